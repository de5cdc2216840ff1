package endpoint

import (
	"testing"

	"natter/shared/imerr"
	"natter/shared/op"
)

// Operators and chat users are separate: each reaches only its own kind of op, and an
// operator only the admin ops its role allows.
func TestCheckAccess(t *testing.T) {
	userOp := op.Op{Name: "msg.send", Access: op.User}
	publicOp := op.Op{Name: "account.login", Access: op.Public}
	readOp := op.Op{Name: "admin.audit.list", Access: op.Admin, Role: op.RoleAuditor}
	banOp := op.Op{Name: "admin.user.ban", Access: op.Admin, Role: op.RoleOperator}
	rootOp := op.Op{Name: "admin.operator.create", Access: op.Admin, Role: op.RoleSuperadmin}
	anon := Caller{}
	user := Caller{UserID: 7, Role: "user"}
	auditor := Caller{UserID: 7, Role: op.RoleAuditor}
	operator := Caller{UserID: 7, Role: op.RoleOperator}
	root := Caller{UserID: 7, Role: op.RoleSuperadmin}
	for _, c := range []struct {
		o    op.Op
		c    Caller
		want imerr.Code // "" = allowed
	}{
		{publicOp, anon, ""}, {publicOp, user, ""},
		{userOp, anon, imerr.Unauthorized}, {userOp, user, ""},
		{userOp, auditor, imerr.Forbidden}, {userOp, root, imerr.Forbidden},
		{readOp, anon, imerr.Unauthorized}, {readOp, user, imerr.Unauthorized},
		{readOp, Caller{Role: op.RoleSuperadmin}, imerr.Unauthorized},
		{readOp, auditor, ""}, {readOp, operator, ""}, {readOp, root, ""},
		{banOp, auditor, imerr.Forbidden}, {banOp, operator, ""}, {banOp, root, ""},
		{rootOp, auditor, imerr.Forbidden}, {rootOp, operator, imerr.Forbidden}, {rootOp, root, ""},
	} {
		err := checkAccess(c.o, c.c)
		var got imerr.Code
		if err != nil {
			got = imerr.From(err).Code
		}
		if got != c.want {
			t.Errorf("%s by %+v: got %q, want %q (%v)", c.o.Name, c.c, got, c.want, err)
		}
	}
}
