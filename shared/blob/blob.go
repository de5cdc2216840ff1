// Package blob opens the S3 client (MinIO in production, any S3 server in dev/tests)
// and makes sure the bucket exists.
package blob

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"natter/shared/config"
)

// Open returns a client for c and creates c.Bucket if it is missing.
func Open(ctx context.Context, c config.S3) (*minio.Client, error) {
	mc, err := New(c)
	if err != nil {
		return nil, err
	}
	if err := EnsureBucket(ctx, mc, c); err != nil {
		return nil, err
	}
	return mc, nil
}

// New returns a client for c without calling the server.
func New(c config.S3) (*minio.Client, error) {
	mc, err := minio.New(c.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure: c.UseSSL,
		Region: c.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return mc, nil
}

// EnsureBucket creates c.Bucket if it is missing.
func EnsureBucket(ctx context.Context, mc *minio.Client, c config.S3) error {
	ok, err := mc.BucketExists(ctx, c.Bucket)
	if err != nil {
		return fmt.Errorf("s3 %s: bucket %s: %w", c.Endpoint, c.Bucket, err)
	}
	if !ok {
		if err := mc.MakeBucket(ctx, c.Bucket, minio.MakeBucketOptions{Region: c.Region}); err != nil {
			return fmt.Errorf("s3 make bucket %s: %w", c.Bucket, err)
		}
	}
	return nil
}

// Presigner returns a client that signs URLs for the address clients reach the
// S3 server at (c.PublicEndpoint, or c.Endpoint when it is empty). It never
// calls the server: with the region set, presigning is local.
func Presigner(c config.S3) (*minio.Client, error) {
	endpoint, secure := c.Endpoint, c.UseSSL
	if c.PublicEndpoint != "" {
		endpoint, secure = c.PublicEndpoint, c.PublicUseSSL
	}
	mc, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure: secure,
		Region: c.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 presigner: %w", err)
	}
	return mc, nil
}
