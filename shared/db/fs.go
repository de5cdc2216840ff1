package db

import (
	"io/fs"

	schema "natter/sql"
)

func mustSub() fs.FS {
	sub, err := fs.Sub(schema.Migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}
