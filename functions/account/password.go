package account

import "natter/shared/password"

// HashPassword returns the argon2id encoding of password as stored in users.password_hash
// (exported for bulk seeding in tests and load runs).
func HashPassword(p string) string { return password.Hash(p) }

// checkPassword verifies password against an encoded hash.
func checkPassword(encoded, p string) (bool, error) { return password.Check(encoded, p) }
