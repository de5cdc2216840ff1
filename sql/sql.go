// Package sql holds natter's MySQL schema as versioned goose migrations; it is the
// only place DDL lives. shared/db applies them.
package sql

import "embed"

// Migrations holds migrations/*.sql.
//
//go:embed migrations/*.sql
var Migrations embed.FS
