package vector

import (
	"syscall"
	"testing"
	"unsafe"
)

// TestDotStaysInBounds places vectors against inaccessible pages: a kernel
// that read before or past a slice would crash the test.
func TestDotStaysInBounds(t *testing.T) {
	page := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 3*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skip("mmap:", err)
	}
	defer syscall.Munmap(mem)
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[2*page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	mid := unsafe.Slice((*float32)(unsafe.Pointer(&mem[page])), page/4)
	for i := range mid {
		mid[i] = float32(i%7 - 3) // small integers: every sum is exact
	}
	forEachKernel(t, func(t *testing.T) {
		for n := range min(len(mid), 200) + 1 {
			head, tail := mid[:n:n], mid[len(mid)-n:]
			want := float32(naiveDot(head, tail))
			if got := Dot(head, tail); got != want {
				t.Fatalf("n=%d: Dot=%v want %v", n, got, want)
			}
			a, b, c, d := dot4(tail, head, tail, head, tail)
			if a != want || c != want || b != float32(naiveDot(tail, tail)) || d != b {
				t.Fatalf("n=%d: dot4=%v %v %v %v", n, a, b, c, d)
			}
		}
	})
}
