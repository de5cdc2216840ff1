package ids

import (
	"sync"
	"testing"
)

func TestNextUniqueAndIncreasing(t *testing.T) {
	g := NewGenerator(7)
	var mu sync.Mutex
	seen := make(map[int64]bool, 40000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := int64(0)
			for range 10000 {
				id := g.Next()
				if id <= prev {
					t.Errorf("id %d not above %d", id, prev)
					return
				}
				prev = id
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate id %d", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func BenchmarkNext(b *testing.B) {
	g := NewGenerator(1)
	for b.Loop() {
		g.Next()
	}
}
