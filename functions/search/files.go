package search

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/validate"
)

// FileSearchReq is file.search: file names holding the query, in the caller's
// conversations (or one of them).
type FileSearchReq struct {
	Query  string `json:"query"`
	ConvID string `json:"conv_id,omitempty"`
	// Before continues a page: the next_before of the last one (a message id).
	Before int64 `json:"before,omitempty,string"`
	Limit  int   `json:"limit,omitempty"`
}

func (r *FileSearchReq) Validate() error {
	if err := validate.Text("query", r.Query, maxNameQuery); err != nil {
		return err
	}
	if strings.TrimSpace(r.Query) == "" {
		return errors.New("query required")
	}
	if len(r.ConvID) > 64 || r.Before < 0 {
		return errors.New("filters: invalid")
	}
	return nil
}

// FileHit is a file found, with the message that carries it.
type FileHit struct {
	FileID int64  `json:"file_id,string"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	MIME   string `json:"mime"`
	Kind   string `json:"kind"`
	ConvID string `json:"conv_id"`
	Seq    int64  `json:"seq"`
	MsgID  int64  `json:"msg_id,string"`
	Sender int64  `json:"sender"`
	SentAt int64  `json:"sent_at"`
}

// FileSearchResp is file.search's answer, newest message first.
type FileSearchResp struct {
	Files      []FileHit `json:"files"`
	HasMore    bool      `json:"has_more"`
	NextBefore int64     `json:"next_before,omitempty,string"`
}

// fileReady is functions/file's status of a completed upload.
const fileReady = 1

// fileSearch finds the files carried by messages the caller can read (the
// rule file.get applies: a member of the conversation, the message past their
// min_seq and not recalled) whose name holds the query, case- and
// accent-insensitively.
func (s *Service) fileSearch(ctx context.Context, c endpoint.Caller, r FileSearchReq) (FileSearchResp, error) {
	limit := validate.Limit(r.Limit, defLimit, maxLimit)
	q := `SELECT f.id, f.name, f.size, f.mime, f.kind, m.conv_id, m.seq, m.id, m.sender_id, m.created_at
		FROM conversation_members cm
		JOIN message_files mf ON mf.conv_id = cm.conv_id
		JOIN messages m ON m.conv_id = mf.conv_id AND m.sender_id = mf.sender_id AND m.client_msg_id = mf.client_msg_id
		JOIN files f ON f.id = mf.file_id
		WHERE cm.user_id = ? AND m.recalled_by = 0 AND m.seq > cm.min_seq AND f.status = ?
		  AND f.name COLLATE utf8mb4_unicode_ci LIKE ?`
	args := []any{c.UserID, fileReady, "%" + likeEscape(strings.TrimSpace(r.Query)) + "%"}
	if r.ConvID != "" {
		conv, err := convid.Parse(r.ConvID)
		if err != nil {
			return FileSearchResp{}, err
		}
		var one int
		err = s.db.QueryRowContext(ctx, "SELECT 1 FROM conversation_members WHERE user_id = ? AND conv_id = ?", c.UserID, conv.Raw).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return FileSearchResp{}, errNoConversation
		}
		if err != nil {
			return FileSearchResp{}, fmt.Errorf("membership: %w", err)
		}
		q += " AND cm.conv_id = ?"
		args = append(args, conv.Raw)
	}
	if r.Before > 0 {
		q += " AND m.id < ?"
		args = append(args, r.Before)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY m.id DESC LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return FileSearchResp{}, fmt.Errorf("file search: %w", err)
	}
	defer rows.Close()
	out := FileSearchResp{Files: []FileHit{}}
	for rows.Next() {
		var h FileHit
		var sent time.Time
		if err := rows.Scan(&h.FileID, &h.Name, &h.Size, &h.MIME, &h.Kind, &h.ConvID, &h.Seq, &h.MsgID, &h.Sender, &sent); err != nil {
			return FileSearchResp{}, fmt.Errorf("file search: %w", err)
		}
		h.SentAt = sent.UnixMilli()
		out.Files = append(out.Files, h)
	}
	if err := rows.Err(); err != nil {
		return FileSearchResp{}, fmt.Errorf("file search: %w", err)
	}
	if len(out.Files) > limit {
		out.Files = out.Files[:limit]
		out.HasMore, out.NextBefore = true, out.Files[limit-1].MsgID
	}
	return out, nil
}

// FavSearchReq is fav.search: the caller's favorites holding the query.
type FavSearchReq struct {
	Query string `json:"query"`
	Limit int    `json:"limit,omitempty"`
}

func (r *FavSearchReq) Validate() error {
	if err := validate.Text("query", r.Query, maxQueryRunes); err != nil {
		return err
	}
	if ParseQuery(r.Query).Empty() {
		return errors.New("query: no word to search")
	}
	return nil
}

// FavHit is a favorite found; fav.list has the whole of it.
type FavHit struct {
	FavID     int64   `json:"fav_id"`
	Kind      string  `json:"kind"` // message, file or note
	ConvID    string  `json:"conv_id,omitempty"`
	Seq       int64   `json:"seq,omitempty"`
	MsgID     int64   `json:"msg_id,omitempty,string"`
	FileID    int64   `json:"file_id,omitempty,string"`
	CreatedAt int64   `json:"created_at"`
	Snippet   Snippet `json:"snippet"`
}

// FavSearchResp is fav.search's answer, newest favorite first.
type FavSearchResp struct {
	Favorites []FavHit `json:"favorites"`
	// Truncated: the caller has more favorites than one search reads
	// (favScan); the oldest were not searched.
	Truncated bool `json:"truncated,omitempty"`
}

// favScan bounds the favorites one fav.search reads.
const favScan = 5000

// favSearch matches the caller's favorites (a saved message's text or file
// name, a file's name, a note) as msg.search matches messages: every word
// (prefixes too) or CJK run, case- and accent-insensitively. A user's
// favorites are few: they are read (the newest favScan) and matched here.
func (s *Service) favSearch(ctx context.Context, c endpoint.Caller, r FavSearchReq) (FavSearchResp, error) {
	limit := validate.Limit(r.Limit, defLimit, maxLimit)
	q := ParseQuery(r.Query)
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, COALESCE(conv_id, ''), seq, msg_id, file_id, msg_type, content, created_at
		FROM favorites WHERE user_id = ? ORDER BY id DESC LIMIT ?`, c.UserID, favScan+1)
	if err != nil {
		return FavSearchResp{}, fmt.Errorf("fav search: %w", err)
	}
	defer rows.Close()
	out := FavSearchResp{Favorites: []FavHit{}}
	n := 0
	for rows.Next() {
		if n++; n > favScan {
			out.Truncated = true
			break
		}
		var h FavHit
		var typ string
		var content []byte
		var created time.Time
		if err := rows.Scan(&h.FavID, &h.Kind, &h.ConvID, &h.Seq, &h.MsgID, &h.FileID, &typ, &content, &created); err != nil {
			return FavSearchResp{}, fmt.Errorf("fav search: %w", err)
		}
		if typ == "" {
			typ = h.Kind
		}
		body, ok := searchable(typ, content)
		if !ok {
			continue
		}
		spans, ok := q.Match(body)
		if !ok {
			continue
		}
		h.CreatedAt = created.UnixMilli()
		h.Snippet = snippet(body, spans)
		out.Favorites = append(out.Favorites, h)
		if len(out.Favorites) == limit {
			break
		}
	}
	return out, rows.Err()
}
