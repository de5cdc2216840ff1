// Package config holds the settings blocks that several binaries share. Each binary
// declares its own Config struct embedding the blocks it needs under their env
// prefixes and parses it once in main with Parse.
package config

import (
	"fmt"
	"reflect"
	"time"

	"github.com/caarlos0/env/v11"
)

// Parse reads a binary's config from the environment.
func Parse[T any]() (T, error) {
	c, err := env.ParseAs[T]()
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// NATS is the broker connection (env prefix NATS_).
type NATS struct {
	URL  string `env:"URL" envDefault:"nats://127.0.0.1:4222"`
	Name string `env:"NAME"`
	User string `env:"USER"`
	Pass string `env:"PASSWORD"`
}

// MySQL is the source of truth (env prefix MYSQL_).
type MySQL struct {
	DSN string `env:"DSN" envDefault:"root@tcp(127.0.0.1:3306)/natter"`
	// ReplicaDSN is a replica of DSN for history, sync and conversation lists, read
	// only once it has applied what the primary had (db.Reader); empty: none.
	ReplicaDSN   string        `env:"REPLICA_DSN"`
	ReplicaWait  time.Duration `env:"REPLICA_WAIT" envDefault:"200ms"` // longest wait for the replica to catch up before reading the primary`
	MaxOpenConns int           `env:"MAX_OPEN_CONNS" envDefault:"64"`
	MaxIdleConns int           `env:"MAX_IDLE_CONNS" envDefault:"64"`
}

// Redis is the fast path (env prefix REDIS_).
type Redis struct {
	// Addr is one address, or a comma-separated list: a Redis Cluster's nodes, or
	// with MasterName the Sentinels'.
	Addr       string `env:"ADDR" envDefault:"127.0.0.1:6379"`
	MasterName string `env:"MASTER_NAME"` // Sentinel: the monitored primary's name
	Cluster    bool   `env:"CLUSTER"`     // a Redis Cluster reached through one address`
	Password   string `env:"PASSWORD"`
	DB         int    `env:"DB" envDefault:"0"`
	PoolSize   int    `env:"POOL_SIZE" envDefault:"64"`
}

// S3 is the object store for files (env prefix S3_).
type S3 struct {
	Endpoint  string `env:"ENDPOINT" envDefault:"127.0.0.1:7070"`
	AccessKey string `env:"ACCESS_KEY" envDefault:"natter"`
	SecretKey string `env:"SECRET_KEY" envDefault:"natter-dev-secret"`
	Bucket    string `env:"BUCKET" envDefault:"natter"`
	Region    string `env:"REGION" envDefault:"us-east-1"`
	UseSSL    bool   `env:"USE_SSL" envDefault:"false"`
	// PublicEndpoint is the address clients reach the S3 server at, which
	// presigned URLs name (host:port); empty: Endpoint. PublicUseSSL is its scheme.
	PublicEndpoint string `env:"PUBLIC_ENDPOINT"`
	PublicUseSSL   bool   `env:"PUBLIC_USE_SSL" envDefault:"false"`
}

// Auth signs and checks tokens (env prefix AUTH_). The secret has a development
// default so that `go tool task up` works, and a process refuses to start with it
// (or any secret under 32 bytes) unless AUTH_DEV is set, as up and the tests do.
type Auth struct {
	Secret string `env:"SECRET" envDefault:"natter-dev-secret-change-me"`
	// PreviousSecret is accepted for tokens signed with it, never used to sign:
	// to rotate, set AUTH_SECRET to a new secret and this to the old one, and
	// remove it one AUTH_ACCESS_TTL later.
	PreviousSecret string        `env:"PREVIOUS_SECRET"`
	Dev            bool          `env:"DEV"`
	AccessTTL      time.Duration `env:"ACCESS_TTL" envDefault:"15m"`
	RefreshTTL     time.Duration `env:"REFRESH_TTL" envDefault:"720h"`
}

// AdminAuth signs and checks operator (back-office) tokens (env prefix
// ADMIN_AUTH_): a key of their own, never AUTH_SECRET, so that no chat token is an
// operator token or the reverse. Operator sessions are short: one token of
// AccessTTL, no refresh; the console logs in again.
type AdminAuth struct {
	Secret         string        `env:"SECRET" envDefault:"natter-dev-admin-secret-change-me"`
	PreviousSecret string        `env:"PREVIOUS_SECRET"`
	Dev            bool          `env:"DEV"`
	AccessTTL      time.Duration `env:"ACCESS_TTL" envDefault:"30m"`
}

// Log configures the root logger (env prefix LOG_).
type Log struct {
	Level  string `env:"LEVEL" envDefault:"info"`
	Pretty bool   `env:"PRETTY" envDefault:"false"`
}

// Defaults returns T with every field set from its envDefault tag (nested blocks
// too), read from an empty environment: the tags are the one place a default is
// written.
func Defaults[T any]() T {
	c, err := env.ParseAsWithOptions[T](env.Options{Environment: map[string]string{}})
	if err != nil {
		// A malformed envDefault is a programming error, caught by any test.
		panic(fmt.Sprintf("config: defaults of %T: %v", c, err))
	}
	return c
}

// WithDefaults returns c with each zero field (at any depth of nested structs)
// replaced by its envDefault, so code and tests may pass a partial config.
// Fields whose zero value is meaningful must not carry an envDefault.
func WithDefaults[T any](c T) T {
	d := Defaults[T]()
	fillZero(reflect.ValueOf(&c).Elem(), reflect.ValueOf(d))
	return c
}

func fillZero(dst, def reflect.Value) {
	for i := range dst.NumField() {
		f := dst.Field(i)
		if !f.CanSet() {
			continue
		}
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Time]() {
			fillZero(f, def.Field(i))
			continue
		}
		if f.IsZero() {
			f.Set(def.Field(i))
		}
	}
}

// Tracing exports OpenTelemetry spans over OTLP/HTTP (standard variable names, no
// prefix): off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, e.g. http://127.0.0.1:4318.
type Tracing struct {
	Endpoint    string  `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	SampleRatio float64 `env:"OTEL_TRACES_SAMPLER_ARG" envDefault:"1"` // share of new traces kept (0..1)
}
