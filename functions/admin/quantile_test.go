package admin

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	old := map[float64]float64{0.001: 5, 0.01: 5, inf: 5}
	cur := map[float64]float64{0.001: 15, 0.01: 25, inf: 25} // 10 under 1 ms, 10 in (1, 10] ms since old
	tests := []struct {
		q, want float64
	}{
		{0.5, 0.001},
		{0.95, 0.001 + 0.009*9/10},
		{0.25, 0.0005},
	}
	for _, tt := range tests {
		if got := quantile(tt.q, old, cur); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("q%v: %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := quantile(0.95, nil, map[float64]float64{0.1: 1, inf: 10}); got != 0.1 {
		t.Errorf("past the last bucket: %v, want its bound", got)
	}
	if got := quantile(0.95, cur, cur); got != 0 {
		t.Errorf("no traffic: %v", got)
	}
}
