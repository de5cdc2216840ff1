package password

import "testing"

func TestHashCheck(t *testing.T) {
	h := Hash("correct horse")
	if ok, err := Check(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, err := Check(h, "wrong horse"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	if h == Hash("correct horse") {
		t.Fatal("no salt")
	}
	for _, bad := range []string{"", "!", "$argon2id$v=19$m=1$x$y", "$bcrypt$a$b$c$d"} {
		if _, err := Check(bad, "x"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
	CheckNobody("x")
}
