// Package hist records latencies in a fixed-size log-linear histogram, in the
// manner of HdrHistogram: values in microseconds, exact below 128 µs and within
// 1/64 (1.6 %) above, up to hours. Any number of goroutines record with atomic
// adds and no lock; readers take a Snapshot, and the difference of two snapshots
// gives the percentiles of one interval (a time-series point, a step of a run).
package hist

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits = 6
	sub     = 1 << subBits // sub-buckets per power of two
	// maxMicros caps recorded values (about 12.7 days): beyond it everything is
	// one bucket.
	maxMicros = 1<<40 - 1
	nBuckets  = (40-subBits)*sub + 2*sub
)

// index maps a value in µs to its bucket.
func index(v uint64) int {
	if v < 2*sub {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [sub, 2*sub)
	return e*sub + int(v>>e)
}

// bounds returns the smallest and largest value of bucket i.
func bounds(i int) (lo, hi uint64) {
	if i < 2*sub {
		return uint64(i), uint64(i)
	}
	e := i/sub - 1
	top := uint64(i - e*sub)
	return top << e, (top+1)<<e - 1
}

// Hist is a concurrent latency histogram. The zero value is ready to use.
type Hist struct {
	counts [nBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // µs
	max    atomic.Uint64 // µs
}

// Record adds one latency; negative durations count as zero.
func (h *Hist) Record(d time.Duration) {
	v := uint64(max(d.Microseconds(), 0))
	v = min(v, maxMicros)
	h.counts[index(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Snapshot copies the histogram's current state.
func (h *Hist) Snapshot() *Snapshot {
	s := &Snapshot{Counts: make([]uint64, nBuckets)}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Total, s.Sum, s.Max = h.total.Load(), h.sum.Load(), h.max.Load()
	return s
}

// Snapshot is a histogram's state at one moment (or the difference of two).
type Snapshot struct {
	Counts []uint64
	Total  uint64
	Sum    uint64 // µs
	// Max is the largest value recorded in the whole run so far; a difference
	// keeps the later one's, corrected to the interval's highest bucket.
	Max uint64 // µs
}

// Sub returns what was recorded between prev and s.
func (s *Snapshot) Sub(prev *Snapshot) *Snapshot {
	if prev == nil {
		return s
	}
	d := &Snapshot{Counts: make([]uint64, len(s.Counts)), Total: s.Total - prev.Total, Sum: s.Sum - prev.Sum}
	top := -1
	for i := range s.Counts {
		d.Counts[i] = s.Counts[i] - prev.Counts[i]
		if d.Counts[i] > 0 {
			top = i
		}
	}
	if top >= 0 {
		_, hi := bounds(top)
		d.Max = min(hi, s.Max)
	}
	return d
}

// Quantile returns the value at quantile q (0..1): the highest value of the
// bucket holding that rank, never above the recorded maximum.
func (s *Snapshot) Quantile(q float64) time.Duration {
	if s.Total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.Total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= rank {
			_, hi := bounds(i)
			return time.Duration(min(hi, s.Max)) * time.Microsecond
		}
	}
	return time.Duration(s.Max) * time.Microsecond
}

// Mean is the average recorded value.
func (s *Snapshot) Mean() time.Duration {
	if s.Total == 0 {
		return 0
	}
	return time.Duration(s.Sum/s.Total) * time.Microsecond
}

// Summary is a snapshot's usual percentiles in milliseconds, for reports.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary computes the report percentiles.
func (s *Snapshot) Summary() Summary {
	return Summary{
		Count: int64(s.Total), Mean: ms(s.Mean()),
		P50: ms(s.Quantile(0.50)), P90: ms(s.Quantile(0.90)), P95: ms(s.Quantile(0.95)),
		P99: ms(s.Quantile(0.99)), P999: ms(s.Quantile(0.999)),
		Max: ms(time.Duration(s.Max) * time.Microsecond),
	}
}

// ms is d in milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }
