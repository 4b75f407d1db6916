package vector

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

func expIndex(t *testing.T) (*Index, [][]float32) {
	data := clusteredData(100, benchN+benchQueries+benchReserve, benchDim, 100, 1)
	base := data[:benchN]
	const path = "/tmp/clustered100k.graph"
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		st := time.Now()
		x, err := ReadGraph(bufio.NewReader(f), vectorsOf(base))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ReadGraph 100k: %v\n", time.Since(st))
		return x, data
	}
	x := New(benchDim, Config{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < benchN; i += 2 {
				x.Add(uint32(i), base[i])
			}
		})
	}
	wg.Wait()
	f, _ := os.Create(path)
	st := time.Now()
	bw := bufio.NewWriter(f)
	x.WriteGraph(bw)
	bw.Flush()
	f.Close()
	fmt.Printf("WriteGraph 100k: %v\n", time.Since(st))
	return x, data
}

func TestExpSearch(t *testing.T) {
	if os.Getenv("VEXP") == "" {
		t.Skip()
	}
	x, data := expIndex(t)
	queries := data[benchN : benchN+benchQueries]
	runtime.LockOSThread()
	for round := range 3 {
		st, cpu := time.Now(), threadCPU()
		n := 0
		for time.Since(st) < 4*time.Second {
			x.Search(queries[n%len(queries)], 10, 0, nil)
			n++
		}
		fmt.Printf("round %d: %d searches, wall %v cpu %v each\n", round, n, time.Since(st)/time.Duration(n), (threadCPU()-cpu)/time.Duration(n))
	}
}

func TestExpInsert(t *testing.T) {
	if os.Getenv("VEXP") == "" {
		t.Skip()
	}
	x, data := expIndex(t)
	extra := data[benchN+benchQueries:]
	runtime.LockOSThread()
	st, cpu := time.Now(), threadCPU()
	const n = 3000
	for i := range n {
		x.Add(uint32(benchN+i), extra[i])
	}
	fmt.Printf("%d inserts: wall %v cpu %v each\n", n, time.Since(st)/n, (threadCPU()-cpu)/n)
}

