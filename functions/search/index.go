package search

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"natter/shared/db"
	"natter/shared/wire"
)

// Key names a message.
type Key struct {
	ConvID string
	Seq    int64
}

// Doc is an indexed message: its text in its latest version.
type Doc struct {
	Key
	ID     int64
	Sender int64
	Type   string
	SentAt time.Time
	Body   string
}

// Filter narrows a search to what one user may read: the conversations they
// are a member of, past their min_seq (groups that hide history from
// newcomers), plus the request's filters.
type Filter struct {
	Scopes   []Scope // the conversations searched (none: nothing is found)
	Sender   int64
	Type     string
	Since    time.Time // zero: no bound
	Until    time.Time // zero: no bound
	BeforeID int64     // 0: from the newest
}

// Scope is a conversation a user may search, from the seq after MinSeq.
type Scope struct {
	ConvID string
	MinSeq int64
}

// Index is where message text is stored and searched. The embedded default
// (postings, below) needs nothing but MariaDB or MySQL; another backend (MySQL
// 8's ngram FULLTEXT parser, an external engine) would implement the same.
type Index interface {
	// Sync brings the index in step with the messages table for keys: a
	// message stored, edited or recalled since it was indexed (or not indexed
	// yet) is written again or taken out. It reads the truth itself, so events
	// handled twice or out of order leave it right.
	Sync(ctx context.Context, keys []Key) error
	// Candidates returns up to limit documents f admits that hold a token of
	// every range, newest (highest message id) first. Tokens stand for more
	// than one word: the caller checks each document against the query.
	Candidates(ctx context.Context, f Filter, ranges []TokenRange, limit int) ([]Doc, error)
	// Clear forgets everything (a reindex from scratch).
	Clear(ctx context.Context) error
}

// postings is the embedded Index: search_docs (the text) and search_postings
// (conversation, token hash, seq) in the same database as the messages.
type postings struct {
	db *sql.DB
}

// NewPostings returns the embedded index on d.
func NewPostings(d *sql.DB) Index { return &postings{db: d} }

// searchable reports whether a message of this type is indexed, and extracts
// its text: a text's or rich text's text, a file's name and caption.
func searchable(kind string, content []byte) (string, bool) {
	if kind == wire.TypeSystem {
		return "", false
	}
	var c struct {
		Text    string `json:"text"`
		Name    string `json:"name"`
		Caption string `json:"caption"`
	}
	if json.Unmarshal(content, &c) != nil {
		return "", false
	}
	parts := make([]string, 0, 3)
	for _, p := range []string{c.Text, c.Name, c.Caption} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "", false
	}
	return strings.Join(parts, "\n"), true
}

// chunk bounds the rows of one multi-row statement.
const chunk = 500

func (p *postings) Sync(ctx context.Context, keys []Key) error {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b Key) int {
		if c := strings.Compare(a.ConvID, b.ConvID); c != 0 {
			return c
		}
		return int(a.Seq - b.Seq)
	})
	keys = slices.Compact(keys)
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		if err := db.InTx(ctx, p.db, func(tx *sql.Tx) error { return p.sync(ctx, tx, part) }); err != nil {
			return fmt.Errorf("search index: %w", err)
		}
	}
	return nil
}

// keyWhere is "(conv_id = ? AND seq = ?) OR ..." for keys, with its arguments.
func keyWhere(prefix string, keys []Key) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(" + prefix + "conv_id = ? AND " + prefix + "seq = ?)")
		args = append(args, k.ConvID, k.Seq)
	}
	return b.String(), args
}

type indexed struct {
	mod  int64
	body string
}

type truth struct {
	doc    Doc
	mod    int64
	recall bool
}

// sync indexes keys (sorted, at most chunk) in tx. The existing documents are
// locked first, then the messages read (READ COMMITTED: the latest committed
// rows), so that two workers syncing one message one after the other leave the
// later truth. Two workers indexing a message new to the index at once may
// both insert its tokens; an edit between them can then leave a stale token,
// which costs a candidate the text check drops, never a wrong answer.
func (p *postings) sync(ctx context.Context, tx *sql.Tx, keys []Key) error {
	where, args := keyWhere("", keys)
	old := make(map[Key]indexed, len(keys))
	rows, err := tx.QueryContext(ctx, "SELECT conv_id, seq, mod_seq, body FROM search_docs WHERE "+where+" FOR UPDATE", args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k Key
		var d indexed
		if err := rows.Scan(&k.ConvID, &k.Seq, &d.mod, &d.body); err != nil {
			rows.Close()
			return err
		}
		old[k] = d
	}
	if err := rows.Close(); err != nil {
		return err
	}
	now := make(map[Key]truth, len(keys))
	rows, err = tx.QueryContext(ctx, "SELECT conv_id, seq, id, sender_id, kind, content, created_at, mod_seq, recalled_by FROM messages WHERE "+where, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t truth
		var content []byte
		var recalledBy int64
		if err := rows.Scan(&t.doc.ConvID, &t.doc.Seq, &t.doc.ID, &t.doc.Sender, &t.doc.Type, &content, &t.doc.SentAt, &t.mod, &recalledBy); err != nil {
			rows.Close()
			return err
		}
		t.recall = recalledBy != 0
		if !t.recall {
			var ok bool
			if t.doc.Body, ok = searchable(t.doc.Type, content); !ok {
				t.recall = true // nothing to search: as good as gone
			}
		}
		now[t.doc.Key] = t
	}
	if err := rows.Close(); err != nil {
		return err
	}

	var drop []posting
	var add []posting
	var gone []Key
	var put []truth
	for _, k := range keys {
		o, had := old[k]
		t, exists := now[k]
		if !exists || t.recall {
			if had {
				gone = append(gone, k)
				drop = appendPostings(drop, k, 0, Tokens(o.body))
			}
			continue
		}
		if had && o.mod > t.mod {
			continue // the index is ahead (cannot happen while rows are locked; harmless)
		}
		if had && o.body == t.doc.Body {
			if o.mod != t.mod {
				put = append(put, t)
			}
			continue
		}
		put = append(put, t)
		newToks := Tokens(t.doc.Body)
		if !had {
			add = appendPostings(add, k, t.doc.ID, newToks)
			continue
		}
		oldToks := Tokens(o.body)
		inNew := make(map[Token]bool, len(newToks))
		for _, tok := range newToks {
			inNew[tok] = true
		}
		inOld := make(map[Token]bool, len(oldToks))
		for _, tok := range oldToks {
			inOld[tok] = true
			if !inNew[tok] {
				drop = append(drop, posting{tok, k, 0})
			}
		}
		for _, tok := range newToks {
			if !inOld[tok] {
				add = append(add, posting{tok, k, t.doc.ID})
			}
		}
	}
	if err := deletePostings(ctx, tx, drop); err != nil {
		return err
	}
	if err := insertPostings(ctx, tx, add); err != nil {
		return err
	}
	if len(gone) > 0 {
		w, a := keyWhere("", gone)
		if _, err := tx.ExecContext(ctx, "DELETE FROM search_docs WHERE "+w, a...); err != nil {
			return err
		}
	}
	for start := 0; start < len(put); start += chunk {
		part := put[start:min(start+chunk, len(put))]
		q := "INSERT INTO search_docs (conv_id, seq, msg_id, sender_id, kind, sent_at, mod_seq, body) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", len(part)), ",") +
			" ON DUPLICATE KEY UPDATE body = IF(VALUES(mod_seq) >= mod_seq, VALUES(body), body), mod_seq = GREATEST(mod_seq, VALUES(mod_seq))"
		a := make([]any, 0, 8*len(part))
		for _, t := range part {
			a = append(a, t.doc.ConvID, t.doc.Seq, t.doc.ID, t.doc.Sender, t.doc.Type, t.doc.SentAt, t.mod, t.doc.Body)
		}
		if _, err := tx.ExecContext(ctx, q, a...); err != nil {
			return err
		}
	}
	return nil
}

type posting struct {
	tok Token
	key Key
	id  int64 // the message id (inserts only)
}

func appendPostings(dst []posting, k Key, id int64, toks []Token) []posting {
	for _, t := range toks {
		dst = append(dst, posting{t, k, id})
	}
	return dst
}

// postingChunk bounds the rows of one postings statement.
const postingChunk = 2000

func insertPostings(ctx context.Context, tx *sql.Tx, ps []posting) error {
	for start := 0; start < len(ps); start += postingChunk {
		part := ps[start:min(start+postingChunk, len(ps))]
		q := "INSERT IGNORE INTO search_postings (conv_id, token, seq, msg_id) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?,?,?),", len(part)), ",")
		a := make([]any, 0, 4*len(part))
		for _, p := range part {
			a = append(a, p.key.ConvID, uint64(p.tok), p.key.Seq, p.id)
		}
		if _, err := tx.ExecContext(ctx, q, a...); err != nil {
			return err
		}
	}
	return nil
}

func deletePostings(ctx context.Context, tx *sql.Tx, ps []posting) error {
	for start := 0; start < len(ps); start += chunk {
		part := ps[start:min(start+chunk, len(ps))]
		var b strings.Builder
		a := make([]any, 0, 3*len(part))
		for i, p := range part {
			if i > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString("(conv_id = ? AND token = ? AND seq = ?)")
			a = append(a, p.key.ConvID, uint64(p.tok), p.key.Seq)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM search_postings WHERE "+b.String(), a...); err != nil {
			return err
		}
	}
	return nil
}

// Candidates reads the postings of the first range in the filter's
// conversations (one index range per conversation: the work grows with the
// user's conversations and the matches in them, not with the index), keeps
// those whose message holds a token of every other range (each such range read
// once in the same conversations and matched by (conversation, seq)), and picks
// the newest by the message id the postings carry; only those documents are
// then read. The conversations are listed in the statement rather than joined
// from the memberships: joined, the database would read each conversation's
// postings whole instead of the range.
func (p *postings) Candidates(ctx context.Context, f Filter, ranges []TokenRange, limit int) ([]Doc, error) {
	if len(ranges) == 0 || len(f.Scopes) == 0 {
		return nil, nil
	}
	convs := make([]any, len(f.Scopes))
	var hidden []Scope // conversations whose history before joining is hidden
	for i, sc := range f.Scopes {
		convs[i] = sc.ConvID
		if sc.MinSeq > 0 {
			hidden = append(hidden, sc)
		}
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(convs)), ",") + ")"

	var b strings.Builder
	args := make([]any, 0, len(ranges)*(len(convs)+2)+2*len(hidden)+8)
	b.WriteString("SELECT DISTINCT p0.conv_id, p0.seq, p0.msg_id FROM search_postings p0")
	if f.Sender != 0 || f.Type != "" || !f.Since.IsZero() || !f.Until.IsZero() {
		b.WriteString(" JOIN search_docs d ON d.conv_id = p0.conv_id AND d.seq = p0.seq")
	}
	b.WriteString(" WHERE p0.conv_id IN " + in + " AND p0.token BETWEEN ? AND ?")
	args = append(args, convs...)
	args = append(args, uint64(ranges[0].Lo), uint64(ranges[0].Hi))
	for _, r := range ranges[1:] {
		b.WriteString(" AND (p0.conv_id, p0.seq) IN (SELECT conv_id, seq FROM search_postings WHERE conv_id IN " + in + " AND token BETWEEN ? AND ?)")
		args = append(args, convs...)
		args = append(args, uint64(r.Lo), uint64(r.Hi))
	}
	for _, sc := range hidden {
		b.WriteString(" AND NOT (p0.conv_id = ? AND p0.seq <= ?)")
		args = append(args, sc.ConvID, sc.MinSeq)
	}
	if f.Sender != 0 {
		b.WriteString(" AND d.sender_id = ?")
		args = append(args, f.Sender)
	}
	if f.Type != "" {
		b.WriteString(" AND d.kind = ?")
		args = append(args, f.Type)
	}
	if !f.Since.IsZero() {
		b.WriteString(" AND d.sent_at >= ?")
		args = append(args, f.Since)
	}
	if !f.Until.IsZero() {
		b.WriteString(" AND d.sent_at < ?")
		args = append(args, f.Until)
	}
	if f.BeforeID > 0 {
		b.WriteString(" AND p0.msg_id < ?")
		args = append(args, f.BeforeID)
	}
	b.WriteString(" ORDER BY p0.msg_id DESC LIMIT ?")
	args = append(args, limit)
	rows, err := p.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("search candidates: %w", err)
	}
	var keys []Key
	for rows.Next() {
		var k Key
		var id int64
		if err := rows.Scan(&k.ConvID, &k.Seq, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search candidates: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("search candidates: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	where, wargs := keyWhere("", keys)
	rows, err = p.db.QueryContext(ctx, "SELECT conv_id, seq, msg_id, sender_id, kind, sent_at, body FROM search_docs WHERE "+where, wargs...)
	if err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	defer rows.Close()
	out := make([]Doc, 0, len(keys))
	for rows.Next() {
		var d Doc
		if err := rows.Scan(&d.ConvID, &d.Seq, &d.ID, &d.Sender, &d.Type, &d.SentAt, &d.Body); err != nil {
			return nil, fmt.Errorf("search documents: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	// Newest first, as the candidates came (a document gone meanwhile is
	// skipped).
	slices.SortFunc(out, func(a, b Doc) int { return cmp.Compare(b.ID, a.ID) })
	return out, nil
}

func (p *postings) Clear(ctx context.Context) error {
	for _, t := range []string{"search_postings", "search_docs"} {
		if _, err := p.db.ExecContext(ctx, "TRUNCATE TABLE "+t); err != nil {
			return fmt.Errorf("search clear: %w", err)
		}
	}
	return nil
}
