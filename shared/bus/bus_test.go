package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"natter/shared/bus"
	"natter/shared/subject"
	"natter/shared/testenv"
)

// TestKeepStreams: a stream deleted by hand comes back.
func TestKeepStreams(t *testing.T) {
	e := testenv.Start(t)
	js, err := jetstream.New(e.NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := bus.EnsureStreams(ctx, e.NC); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, subject.EventStream); err != nil {
		t.Fatal(err)
	}
	go bus.KeepStreams(ctx, e.NC, 50*time.Millisecond, zerolog.Nop())
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := js.Stream(ctx, subject.EventStream); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the stream did not come back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
