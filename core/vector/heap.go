package vector

// scored is a node id with its similarity to the current query. The heaps
// below are typed (no container/heap) so pushes do not box values.
type scored struct {
	score float32
	id    uint32
}

// better reports whether a ranks before b: higher score, then lower id.
func better(a, b scored) bool {
	return a.score > b.score || (a.score == b.score && a.id < b.id)
}

// maxHeap keeps the best element on top: the search frontier.
type maxHeap []scored

func (h *maxHeap) push(e scored) {
	s := append(*h, e)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !better(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

func (h *maxHeap) pop() scored {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		c := l
		if r := l + 1; r < len(s) && better(s[r], s[l]) {
			c = r
		}
		if !better(s[c], s[i]) {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}

// minHeap keeps the worst element on top: the bounded result set, whose top
// is the score a new candidate has to beat.
type minHeap []scored

func (h *minHeap) push(e scored) {
	s := append(*h, e)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !better(s[p], s[i]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

func (h *minHeap) pop() scored {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.fix0()
	return top
}

// fix0 restores the heap after s[0] was replaced.
func (h minHeap) fix0() {
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && better(h[l], h[r]) {
			c = r
		}
		if !better(h[i], h[c]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// drainBestFirst empties the heap and returns its best k entries, best first.
func (h *minHeap) drainBestFirst(k int) []Hit {
	for len(*h) > k {
		h.pop()
	}
	out := make([]Hit, len(*h))
	for i := len(out) - 1; i >= 0; i-- {
		e := h.pop()
		out[i] = Hit{ID: e.id, Score: e.score}
	}
	return out
}
