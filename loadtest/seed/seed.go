// Package seed creates a load run's population straight in MySQL with batched
// INSERTs: users (all with one password hash), sessions with access tokens minted
// by the same secret the edge checks, friendships, 1:1 conversations, a group with
// its members, and backlogs of messages. Thousands of register and login calls
// would take minutes (argon2id costs ~20 ms each) and measure the wrong thing.
//
// The rows are the ones the functions themselves write (see sql/migrations,
// functions/account, functions/friend, functions/group insertMembers and
// functions/message), so every op accepts them. Every name starts with a per-run
// prefix, and Cleanup deletes what the Seeder made.
package seed

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"natter/functions/account"
	"natter/shared/auth"
	"natter/shared/ids"
)

// Password is every seeded user's password.
const Password = "password-123"

// batch is how many rows one multi-row INSERT carries.
const batch = 1000

var passwordHash = sync.OnceValue(func() string { return account.HashPassword(Password) })

// Seeder writes one run's rows and remembers them for Cleanup.
type Seeder struct {
	db     *sql.DB
	signer *auth.Signer
	prefix string
	ids    *ids.Generator

	mu     sync.Mutex
	users  []int64
	convs  []string
	groups []int64
}

// New returns a Seeder whose usernames start with prefix (letters, digits, '-',
// '.'; at most 20 characters so that names stay within 32).
func New(d *sql.DB, signer *auth.Signer, prefix string) *Seeder {
	return &Seeder{db: d, signer: signer, prefix: prefix, ids: ids.NewGenerator(ids.RandomNode())}
}

// Prefix is the username prefix of this run.
func (s *Seeder) Prefix() string { return s.prefix }

// User is a seeded account with one logged-in device.
type User struct {
	ID      int64
	Name    string
	Device  string
	Session string
	Token   string // access token for the edge
}

// Users inserts n users named <prefix><i> with a live session on device each, and
// mints their access tokens.
func (s *Seeder) Users(ctx context.Context, n int, device string) ([]User, error) {
	hash := passwordHash()
	users := make([]User, n)
	for i := range users {
		users[i] = User{Name: s.prefix + strconv.Itoa(i), Device: device}
	}
	for start := 0; start < n; start += batch {
		chunk := users[start:min(start+batch, n)]
		args := make([]any, 0, 3*len(chunk))
		for _, u := range chunk {
			args = append(args, u.Name, hash, u.Name)
		}
		if _, err := s.db.ExecContext(ctx, "INSERT INTO users (username, password_hash, nickname) VALUES "+placeholders(len(chunk), 3), args...); err != nil {
			return nil, fmt.Errorf("seed users: %w", err)
		}
		names := make([]any, len(chunk))
		for i, u := range chunk {
			names[i] = u.Name
		}
		rows, err := s.db.QueryContext(ctx, "SELECT id, username FROM users WHERE username IN ("+marks(len(chunk))+")", names...)
		if err != nil {
			return nil, fmt.Errorf("seeded ids: %w", err)
		}
		byName := make(map[string]int64, len(chunk))
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, err
			}
			byName[name] = id
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		for i := range chunk {
			chunk[i].ID = byName[chunk[i].Name]
			if chunk[i].ID == 0 {
				return nil, fmt.Errorf("seeded user %s not found", chunk[i].Name)
			}
			s.mu.Lock()
			s.users = append(s.users, chunk[i].ID)
			s.mu.Unlock()
		}
		if err := s.sessions(ctx, chunk); err != nil {
			return nil, err
		}
	}
	return users, nil
}

// Devices logs users in on one more device each: it returns a copy of each user
// with a live session on device and that session's access token.
func (s *Seeder) Devices(ctx context.Context, users []User, device string) ([]User, error) {
	out := make([]User, len(users))
	for i, u := range users {
		u.Device = device
		out[i] = u
	}
	for start := 0; start < len(out); start += batch {
		if err := s.sessions(ctx, out[start:min(start+batch, len(out))]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sessions inserts a live session per user (as account.login does) and mints its
// access token.
func (s *Seeder) sessions(ctx context.Context, users []User) error {
	now := time.Now().UTC()
	args := make([]any, 0, 6*len(users))
	for i := range users {
		u := &users[i]
		u.Session = ids.Token(12)
		hash := make([]byte, 32) // no refresh token is ever handed out for it
		_, _ = rand.Read(hash)
		args = append(args, u.Session, u.ID, u.Device, hash, now, now.Add(30*24*time.Hour))
		tok, _, err := s.signer.Issue(auth.Claims{UserID: u.ID, SessionID: u.Session, DeviceID: u.Device}, time.Now())
		if err != nil {
			return err
		}
		u.Token = tok
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO sessions (id, user_id, device_id, refresh_hash, created_at, expires_at) VALUES "+placeholders(len(users), 6), args...)
	if err != nil {
		return fmt.Errorf("seed sessions: %w", err)
	}
	return nil
}

// Friends makes each pair friends (both directions, as friend.respond does).
func (s *Seeder) Friends(ctx context.Context, pairs [][2]int64) error {
	rows := make([][]any, 0, 2*len(pairs))
	for _, p := range pairs {
		rows = append(rows, []any{p[0], p[1]}, []any{p[1], p[0]})
	}
	return s.insert(ctx, "INSERT INTO friendships (user_id, friend_id) VALUES ", 2, rows)
}

// DirectID is the 1:1 conversation id of users a and b (functions/message).
func DirectID(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return "d:" + strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(b, 10)
}

// Direct creates the 1:1 conversation of each pair with its two member rows, as
// the first msg.send would, and returns their ids.
func (s *Seeder) Direct(ctx context.Context, pairs [][2]int64) ([]string, error) {
	convs := make([]string, len(pairs))
	cr := make([][]any, len(pairs))
	mr := make([][]any, 0, 2*len(pairs))
	for i, p := range pairs {
		convs[i] = DirectID(p[0], p[1])
		cr[i] = []any{convs[i], 1}
		mr = append(mr, []any{p[0], convs[i], p[1]}, []any{p[1], convs[i], p[0]})
	}
	s.mu.Lock()
	s.convs = append(s.convs, convs...)
	s.mu.Unlock()
	if err := s.insert(ctx, "INSERT INTO conversations (id, kind) VALUES ", 2, cr); err != nil {
		return nil, err
	}
	if err := s.insert(ctx, "INSERT INTO conversation_members (user_id, conv_id, target_id) VALUES ", 3, mr); err != nil {
		return nil, err
	}
	return convs, nil
}

// Group creates a group owned by owner with members (owner excluded), its
// conversation g:<id> and the member rows group.create writes, and returns the
// group and conversation ids. The group is invite-only, so nobody else joins it.
func (s *Seeder) Group(ctx context.Context, name string, owner int64, members []int64) (int64, string, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO chat_groups (owner_id, name, join_policy, member_count, max_members) VALUES (?, ?, 'invite', ?, ?)`,
		owner, name, len(members)+1, max(len(members)+1, 5000))
	if err != nil {
		return 0, "", fmt.Errorf("seed group: %w", err)
	}
	gid, err := res.LastInsertId()
	if err != nil {
		return 0, "", err
	}
	conv := "g:" + strconv.FormatInt(gid, 10)
	s.mu.Lock()
	s.groups = append(s.groups, gid)
	s.convs = append(s.convs, conv)
	s.mu.Unlock()
	if _, err := s.db.ExecContext(ctx, "INSERT INTO conversations (id, kind) VALUES (?, 2)", conv); err != nil {
		return 0, "", fmt.Errorf("seed group conversation: %w", err)
	}
	gm := [][]any{{gid, owner, 2, owner}} // role 2: owner (functions/group/perm)
	cm := [][]any{{owner, conv, gid}}
	for _, u := range members {
		gm = append(gm, []any{gid, u, 0, owner})
		cm = append(cm, []any{u, conv, gid})
	}
	if err := s.insert(ctx, "INSERT INTO group_members (group_id, user_id, role, invited_by) VALUES ", 4, gm); err != nil {
		return 0, "", err
	}
	if err := s.insert(ctx, "INSERT INTO conversation_members (user_id, conv_id, target_id) VALUES ", 3, cm); err != nil {
		return 0, "", err
	}
	return gid, conv, nil
}

// Messages appends n text messages to conv after seq from (the conversation's
// current last seq), sent in turn by senders, and moves the conversation's seq
// allocator past them, as msg.send would.
func (s *Seeder) Messages(ctx context.Context, conv string, senders []int64, from int64, n int) error {
	return s.Backlogs(ctx, []Backlog{{Conv: conv, Senders: senders, From: from, N: n}})
}

// Backlog is a run of messages to append to one conversation.
type Backlog struct {
	Conv    string
	Senders []int64 // in turn
	From    int64   // the conversation's last seq before
	N       int
}

// Backlogs appends every backlog with multi-row INSERTs spanning conversations,
// then sets each conversation's last seq.
func (s *Seeder) Backlogs(ctx context.Context, bls []Backlog) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var rows, tops [][]any
	flush := func() error {
		err := s.insert(ctx, "INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, content, created_at) VALUES ", 8, rows)
		rows = rows[:0]
		return err
	}
	for _, b := range bls {
		for i := range b.N {
			seq := b.From + int64(i) + 1
			rows = append(rows, []any{b.Conv, seq, s.ids.Next(), b.Senders[i%len(b.Senders)], "seed-" + strconv.FormatInt(seq, 10), "text",
				`{"text":"seeded message ` + strconv.FormatInt(seq, 10) + `"}`, now})
			if len(rows) == batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		kind := 1
		if strings.HasPrefix(b.Conv, "g:") {
			kind = 2
		}
		tops = append(tops, []any{b.Conv, kind, b.From + int64(b.N), now})
	}
	if err := flush(); err != nil {
		return err
	}
	// The conversations exist: this only moves their seq allocators.
	return s.insert(ctx, "INSERT INTO conversations (id, kind, last_seq, last_msg_at) VALUES ", 4, tops,
		" ON DUPLICATE KEY UPDATE last_seq = VALUES(last_seq), last_msg_at = VALUES(last_msg_at)")
}

// Cleanup deletes everything this Seeder made and every message, session and
// membership in it (including those the run itself created through the API).
func (s *Seeder) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	users, convs, groups := s.users, s.convs, s.groups
	s.mu.Unlock()
	steps := []struct {
		q   string
		ids []any
	}{
		{"DELETE FROM messages WHERE conv_id IN ", toAny(convs)},
		{"DELETE FROM message_reactions WHERE conv_id IN ", toAny(convs)},
		{"DELETE FROM conversation_members WHERE conv_id IN ", toAny(convs)},
		{"DELETE FROM conversations WHERE id IN ", toAny(convs)},
		{"DELETE FROM group_members WHERE group_id IN ", toAny(groups)},
		{"DELETE FROM chat_groups WHERE id IN ", toAny(groups)},
		{"DELETE FROM conversation_members WHERE user_id IN ", toAny(users)},
		{"DELETE FROM friendships WHERE user_id IN ", toAny(users)},
		{"DELETE FROM sessions WHERE user_id IN ", toAny(users)},
		{"DELETE FROM users WHERE id IN ", toAny(users)},
	}
	for _, st := range steps {
		for start := 0; start < len(st.ids); start += 500 {
			chunk := st.ids[start:min(start+500, len(st.ids))]
			if _, err := s.db.ExecContext(ctx, st.q+"("+marks(len(chunk))+")", chunk...); err != nil {
				return fmt.Errorf("cleanup: %w", err)
			}
		}
	}
	return nil
}

func (s *Seeder) insert(ctx context.Context, head string, cols int, rows [][]any, tail ...string) error {
	for start := 0; start < len(rows); start += batch {
		chunk := rows[start:min(start+batch, len(rows))]
		args := make([]any, 0, cols*len(chunk))
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := s.db.ExecContext(ctx, head+placeholders(len(chunk), cols)+strings.Join(tail, ""), args...); err != nil {
			return fmt.Errorf("seed: %s: %w", strings.TrimSpace(head), err)
		}
	}
	return nil
}

// placeholders returns "(?, ?), (?, ?)" for n rows of cols columns.
func placeholders(n, cols int) string {
	row := "(" + marks(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func toAny[T any](v []T) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}
