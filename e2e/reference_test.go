package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/cputime"
)

// The reference for a latency tail: a process that answers each request
// after spending a fixed amount of CPU on it, doing nothing else. Offered the
// same requests at the same rate, with the same CPU per request and answers
// of the same size as the engram-ops server, its p99 is the best any server
// doing that much work could show on this machine at that moment; what the
// machine itself does to a loaded process (its other tenants, its kernel's
// housekeeping) shows in it as much as in the real phase.

// referenceServerEnv, set to "CPU_NANOSECONDS ANSWER_BYTES", makes the test
// binary run the reference server instead of the tests (see TestMain).
const referenceServerEnv = "ENGRAM_BENCH_REFERENCE_SERVER"

// referenceServerMain serves on a free loopback port, prints its address as
// the first line of stdout, and answers every request after burning the
// configured CPU time, until stdin closes.
func referenceServerMain(spec string) int {
	var cpu, size int64
	if _, err := fmt.Sscan(spec, &cpu, &size); err != nil || cpu < 0 || size < 0 {
		fmt.Fprintf(os.Stderr, "%s=%q: want CPU_NANOSECONDS ANSWER_BYTES\n", referenceServerEnv, spec)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	answer := []byte(`{"memories":{"vivid":[],"padding":"` + strings.Repeat("x", int(max(0, size-40))) + `"}}`)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		burnCPU(time.Duration(cpu))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	go func() { _ = http.Serve(ln, handler) }()
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin) // the benchmark closes stdin to stop it
	return 0
}

// burnCPU spins until this thread has used d of CPU time, so time the thread
// spends preempted does not count towards the work.
func burnCPU(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	end := cputime.Thread() + d
	x := uint64(1)
	for cputime.Thread() < end {
		for i := 0; i < 2000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 {
		fmt.Fprint(io.Discard, x) // keeps the loop from being optimised away
	}
}

// referenceServer is a running reference server process.
type referenceServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

// startReferenceServer starts the reference server spending cpu per request
// and answering answerBytes.
func startReferenceServer(b *testing.B, cpu time.Duration, answerBytes int) *referenceServer {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), referenceServerEnv+"="+strconv.FormatInt(int64(cpu), 10)+" "+strconv.Itoa(answerBytes))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatalf("reference server: %v", err)
	}
	r := &referenceServer{cmd: cmd, stdin: stdin, url: "http://" + strings.TrimSpace(line) + "/"}
	b.Cleanup(r.stop)
	return r
}

func (r *referenceServer) stop() {
	if r.stdin != nil {
		_ = r.stdin.Close()
		_ = r.cmd.Wait()
		r.stdin = nil
	}
}
