// Package file serves files: uploads through presigned S3 URLs (file.upload.begin
// and .complete), downloads through presigned GETs for the callers allowed to see
// a file (file.get), conversation galleries and own uploads (file.list), and, off
// the request path, a worker that hashes each new file (deduplicating identical
// content) and makes image thumbnails. MySQL holds the metadata, S3 the bytes.
//
// Objects: a client uploads to "up/<id>" (its presigned URL names only that
// key); complete checks it and copies it to "f/<id>", which only the server
// writes, so nothing the client does after complete changes a checked file.
// Thumbnails are "t/<id>.jpg".
package file

import (
	"context"
	"database/sql"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/imerr"
)

// Config is the file domain's settings (env prefix FILE_ in the worker).
type Config struct {
	// Largest file: any file, an image, an avatar.
	MaxSize       int64 `env:"MAX_SIZE" envDefault:"104857600"`
	MaxImageSize  int64 `env:"MAX_IMAGE_SIZE" envDefault:"20971520"`
	MaxAvatarSize int64 `env:"MAX_AVATAR_SIZE" envDefault:"5242880"`
	// Quota bounds the bytes of one user's files (ready and pending); DailyVolume
	// the bytes one user may begin uploading in 24 hours.
	Quota       int64 `env:"QUOTA" envDefault:"10737418240"`
	DailyVolume int64 `env:"DAILY_VOLUME" envDefault:"2147483648"`
	// AllowedTypes and DeniedTypes are media type patterns (path.Match: "image/*").
	// Programs are refused whatever they are declared as.
	AllowedTypes []string `env:"ALLOWED_TYPES" envSeparator:"," envDefault:"image/*,video/*,audio/*,application/*,text/plain,text/csv,text/markdown"`
	DeniedTypes  []string `env:"DENIED_TYPES" envSeparator:"," envDefault:"image/svg+xml,application/x-msdownload,application/x-executable,application/x-dosexec,application/x-sh,application/x-mach-binary,application/vnd.microsoft.portable-executable,application/java-archive,application/x-elf"`
	// UploadExpiry is how long a presigned PUT works; DownloadExpiry a GET.
	UploadExpiry   time.Duration `env:"UPLOAD_EXPIRY" envDefault:"15m"`
	DownloadExpiry time.Duration `env:"DOWNLOAD_EXPIRY" envDefault:"15m"`
	// MultipartAbove: bigger files are uploaded in parts of PartSize.
	MultipartAbove int64 `env:"MULTIPART_ABOVE" envDefault:"33554432"`
	PartSize       int64 `env:"PART_SIZE" envDefault:"16777216"`
	// PendingTTL: an upload not completed this long after it began is deleted by
	// the sweeper, which runs every SweepInterval.
	PendingTTL    time.Duration `env:"PENDING_TTL" envDefault:"1h"`
	SweepInterval time.Duration `env:"SWEEP_INTERVAL" envDefault:"5m"`
	// Thumbnails fit in a ThumbSize square (AvatarThumbSize for avatars); images
	// over ThumbMaxPixels get none (decoding them would take too much memory).
	ThumbSize       int   `env:"THUMB_SIZE" envDefault:"320"`
	AvatarThumbSize int   `env:"AVATAR_THUMB_SIZE" envDefault:"128"`
	ThumbMaxPixels  int64 `env:"THUMB_MAX_PIXELS" envDefault:"40000000"`
	// Workers is how many files one worker process hashes and thumbnails at once.
	Workers int `env:"WORKERS" envDefault:"2"`
}

// Deps are what the domain needs; main wires them. S3 is nil in processes that
// cannot reach S3 (the registry test): every op then answers unavailable.
type Deps struct {
	DB  *sql.DB
	NC  *nats.Conn
	IDs *ids.Generator
	Log zerolog.Logger
	// S3 reads and writes objects; Presign signs the URLs clients use (an address
	// they can reach, blob.Presigner). Bucket holds everything.
	S3      *minio.Client
	Presign *minio.Client
	Bucket  string
	Config  Config
}

// Service implements the file endpoints, the processing worker and the sweeper.
type Service struct {
	db      *sql.DB
	nc      *nats.Conn
	js      jetstream.JetStream
	ids     *ids.Generator
	log     zerolog.Logger
	s3      *minio.Client
	core    minio.Core
	presign *minio.Client
	bucket  string
	cfg     Config
	now     func() time.Time
}

// New returns the file service.
func New(d Deps) *Service {
	s := &Service{db: d.DB, nc: d.NC, ids: d.IDs, log: d.Log, s3: d.S3, presign: d.Presign, bucket: d.Bucket,
		cfg: config.WithDefaults(d.Config), now: time.Now}
	if s.presign == nil {
		s.presign = d.S3
	}
	if d.NC != nil {
		s.js, _ = jetstream.New(d.NC) // fails only on bad options
	}
	if d.S3 != nil {
		s.core = minio.Core{Client: d.S3}
	}
	return s
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("file.upload.begin", s.begin),
		endpoint.Handle("file.upload.complete", s.complete),
		endpoint.Handle("file.get", s.get),
		endpoint.Handle("file.list", s.list),
	}
}

var errNoS3 = imerr.New(imerr.Unavailable, "file storage is not configured")

// Start runs the processing worker and the sweeper until ctx ends. Without
// NATS or S3 it does nothing.
func (s *Service) Start(ctx context.Context) error {
	if s.nc == nil || s.s3 == nil {
		return nil
	}
	if err := s.startProcessing(ctx); err != nil {
		return err
	}
	go s.sweepLoop(ctx)
	return nil
}

// Object keys.
func stagingKey(id int64) string { return "up/" + itoa(id) }
func objectKey(id int64) string  { return "f/" + itoa(id) }
func thumbKey(id int64) string   { return "t/" + itoa(id) + ".jpg" }
