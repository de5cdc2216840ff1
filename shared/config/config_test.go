package config

import (
	"testing"
	"time"
)

type inner struct {
	N int           `env:"N" envDefault:"7"`
	D time.Duration `env:"D" envDefault:"2s"`
}

type outer struct {
	S     string `env:"S" envDefault:"x"`
	Empty string `env:"EMPTY"`
	In    inner  `envPrefix:"IN_"`
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   outer
		want outer
	}{
		{"all zero", outer{}, outer{S: "x", In: inner{N: 7, D: 2 * time.Second}}},
		{"set fields stay", outer{S: "y", In: inner{N: 1}}, outer{S: "y", In: inner{N: 1, D: 2 * time.Second}}},
		{"no default stays zero", outer{Empty: ""}, outer{S: "x", In: inner{N: 7, D: 2 * time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WithDefaults(tt.in); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if d := Defaults[outer](); d.In.N != 7 || d.S != "x" {
		t.Fatalf("Defaults: %+v", d)
	}
}
