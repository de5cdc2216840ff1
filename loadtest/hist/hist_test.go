package hist

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	prevHi := uint64(0)
	for i := 1; i < nBuckets; i++ {
		lo, hi := bounds(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d is [%d,%d] after one ending at %d", i, lo, hi, prevHi)
		}
		if index(lo) != i || index(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: index %d, %d", i, lo, hi, index(lo), index(hi))
		}
		prevHi = hi
	}
	if prevHi < maxMicros {
		t.Fatalf("buckets end at %d, below the cap %d", prevHi, uint64(maxMicros))
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	var h Hist
	vals := make([]time.Duration, 100000)
	for i := range vals {
		vals[i] = time.Duration(rand.ExpFloat64()*5000) * time.Microsecond
		h.Record(vals[i])
	}
	slices.Sort(vals)
	s := h.Snapshot()
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := vals[max(int(q*float64(len(vals)))-1, 0)]
		got := s.Quantile(q)
		if d := float64(got-want) / float64(want+time.Microsecond); d < -0.02 || d > 0.02 {
			t.Errorf("q%.3f: got %v, want %v", q, got, want)
		}
	}
	if s.Total != uint64(len(vals)) || time.Duration(s.Max)*time.Microsecond != vals[len(vals)-1].Truncate(time.Microsecond) {
		t.Errorf("total %d, max %d µs", s.Total, s.Max)
	}
}

func TestIntervalAndConcurrency(t *testing.T) {
	var h Hist
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	first := h.Snapshot()
	for range 10 {
		h.Record(time.Second)
	}
	d := h.Snapshot().Sub(first)
	if d.Total != 10 || d.Quantile(0.5) < 990*time.Millisecond || d.Quantile(0.5) > time.Second {
		t.Fatalf("interval: %d values, median %v", d.Total, d.Quantile(0.5))
	}
	if first.Total != 8000 || first.Quantile(1) != 7999*time.Microsecond {
		t.Fatalf("first: %d values, max %v", first.Total, first.Quantile(1))
	}
}
