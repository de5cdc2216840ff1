// Package conv serves the conversation list and each member's conversation state:
// pin, mute (do-not-disturb), hide, and the read cursor behind unread counts and
// read receipts. All of it lives in MySQL (conversation_members), so counts are
// rebuilt from the truth after Redis loses everything.
package conv

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"natter/shared/db"

	"natter/functions/deliver"
	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

// Deps are what the domain needs; main wires them.
type Deps struct {
	DB *sql.DB
	// Reads serves conv.list (a replica once caught up); nil: DB.
	Reads   *db.Reader
	Deliver *deliver.Deliverer
}

// Service implements the conversation endpoints.
type Service struct {
	db      *sql.DB
	reads   *db.Reader
	deliver *deliver.Deliverer
	now     func() time.Time
}

// New returns the conversation service.
func New(d Deps) *Service {
	reads := d.Reads
	if reads == nil {
		reads = db.PrimaryOnly(d.DB)
	}
	return &Service{db: d.DB, reads: reads, deliver: d.Deliver, now: time.Now}
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("conv.list", s.list),
		endpoint.Handle("conv.pin", s.pin),
		endpoint.Handle("conv.mute", s.mute),
		endpoint.Handle("conv.hide", s.hide),
		endpoint.Handle("conv.read", s.read),
	}
}

type ListReq struct {
	Offset int `json:"offset,omitempty"`
	Limit  int `json:"limit,omitempty"` // default 100, at most 500
}

func (r *ListReq) Validate() error {
	if r.Offset < 0 || r.Limit < 0 {
		return errors.New("offset and limit must not be negative")
	}
	return nil
}

// Conversation is one row of the caller's conversation list.
type Conversation struct {
	ConvID    string        `json:"conv_id"`
	Type      string        `json:"type"`               // direct or group
	PeerID    int64         `json:"peer_id,omitempty"`  // direct
	GroupID   int64         `json:"group_id,omitempty"` // group
	Name      string        `json:"name"`               // the peer's nickname or the group's name
	Avatar    string        `json:"avatar"`             //
	LastSeq   int64         `json:"last_seq"`           //
	LastMsgAt int64         `json:"last_msg_at"`        // unix ms
	Last      *wire.Message `json:"last_message"`       // preview: null content once recalled
	Preview   string        `json:"preview,omitempty"`  // the last message in a line: text, "[Image]", ...
	Unread    int64         `json:"unread"`             //
	ReadSeq   int64         `json:"read_seq"`           //
	Mentioned bool          `json:"mentioned"`          // a message after the read cursor mentions the caller
	Pinned    bool          `json:"pinned"`             // always present, as in conv.pin's reply
	Muted     bool          `json:"muted"`              //
}

type ListResp struct {
	Conversations []Conversation `json:"conversations"`
	HasMore       bool           `json:"has_more"`
}

// list is one query: the member rows, their conversations, the last message by
// primary key and the peer's or group's name. Pinned conversations come first,
// then by last activity. A user with 1,000 conversations gets them in a few pages
// (see BenchmarkList).
func (s *Service) list(ctx context.Context, c endpoint.Caller, r ListReq) (ListResp, error) {
	limit := validate.Limit(r.Limit, 100, 500)
	// The inner query sorts only the member rows and their conversations' activity
	// (narrow rows); the page is then joined with the last message and names.
	rows, err := s.reads.DB(ctx).QueryContext(ctx, `SELECT p.conv_id, p.kind, p.target_id, p.last_seq, p.last_msg_at, p.read_seq, p.min_seq,
			p.mention_seq, p.pinned, p.muted,
			x.id, x.sender_id, x.client_msg_id, x.kind, x.content, x.created_at, x.edit_count, x.recalled_by,
			COALESCE(u.nickname, g.name, ''), COALESCE(u.avatar, g.avatar, '')
		FROM (SELECT m.conv_id, c.kind, m.target_id, c.last_seq, c.last_msg_at, m.read_seq, m.min_seq, m.mention_seq,
				m.pinned_at IS NOT NULL AS pinned, m.muted
			FROM conversation_members m JOIN conversations c ON c.id = m.conv_id
			WHERE m.user_id = ? AND c.last_seq > m.hidden_seq AND c.last_seq > m.min_seq
			ORDER BY m.pinned_at IS NULL, c.last_msg_at DESC, m.conv_id
			LIMIT ? OFFSET ?) p
		LEFT JOIN messages x ON x.conv_id = p.conv_id AND x.seq = p.last_seq
		LEFT JOIN users u ON p.kind = 1 AND u.id = p.target_id
		LEFT JOIN chat_groups g ON p.kind = 2 AND g.id = p.target_id
		ORDER BY p.pinned DESC, p.last_msg_at DESC, p.conv_id`, c.UserID, limit+1, r.Offset)
	if err != nil {
		return ListResp{}, fmt.Errorf("list conversations: %w", err)
	}
	defer rows.Close()
	out := ListResp{Conversations: make([]Conversation, 0, min(limit, 128))}
	budget := wire.NewBudget()
	for rows.Next() {
		var (
			v          Conversation
			kind       int
			target     int64
			lastAt     sql.NullTime
			minSeq     int64
			mention    int64
			id, sender sql.NullInt64
			clientID   sql.NullString
			typ        sql.NullString
			content    []byte
			sentAt     sql.NullTime
			edits      sql.NullInt64
			recalledBy sql.NullInt64
		)
		if err := rows.Scan(&v.ConvID, &kind, &target, &v.LastSeq, &lastAt, &v.ReadSeq, &minSeq, &mention, &v.Pinned, &v.Muted,
			&id, &sender, &clientID, &typ, &content, &sentAt, &edits, &recalledBy, &v.Name, &v.Avatar); err != nil {
			return ListResp{}, fmt.Errorf("scan conversation: %w", err)
		}
		if kind == 2 {
			v.Type, v.GroupID = "group", target
		} else {
			v.Type, v.PeerID = "direct", target
		}
		if lastAt.Valid {
			v.LastMsgAt = lastAt.Time.UnixMilli()
		}
		read := max(v.ReadSeq, minSeq)
		v.Unread = max(v.LastSeq-read, 0)
		v.Mentioned = mention > read
		if id.Valid {
			last := &wire.Message{ConvID: v.ConvID, Seq: v.LastSeq, ID: id.Int64, Sender: sender.Int64, ClientMsgID: clientID.String,
				Type: typ.String, SentAt: sentAt.Time.UnixMilli(), Edits: int(edits.Int64), RecalledBy: recalledBy.Int64}
			last.Recalled = last.RecalledBy != 0
			if !last.Recalled {
				last.Content = json.RawMessage(content)
			}
			v.Last = last
			v.Preview = wire.Preview(last)
		}
		size := 256 + len(v.ConvID) + len(v.Name) + len(v.Avatar) + len(v.Preview)
		if v.Last != nil {
			size += v.Last.Size()
		}
		if !budget.Take(size) { // the reply is full: the next page starts here
			out.HasMore = true
			return out, nil
		}
		out.Conversations = append(out.Conversations, v)
	}
	if err := rows.Err(); err != nil {
		return ListResp{}, fmt.Errorf("list conversations: %w", err)
	}
	if len(out.Conversations) > limit {
		out.Conversations, out.HasMore = out.Conversations[:limit], true
	}
	return out, nil
}

type PinReq struct {
	ConvID string `json:"conv_id"`
	Pinned bool   `json:"pinned"`
}

func (r *PinReq) Validate() error { return validConv(r.ConvID) }

type MuteReq struct {
	ConvID string `json:"conv_id"`
	Muted  bool   `json:"muted"`
}

func (r *MuteReq) Validate() error { return validConv(r.ConvID) }

type HideReq struct {
	ConvID string `json:"conv_id"`
}

func (r *HideReq) Validate() error { return validConv(r.ConvID) }

func (s *Service) pin(ctx context.Context, c endpoint.Caller, r PinReq) (wire.ConvState, error) {
	var at any
	if r.Pinned {
		at = s.now().UTC()
	}
	// Pinning a pinned conversation keeps its original pin time.
	return s.change(ctx, c, r.ConvID, "pinned_at = IF(? IS NULL, NULL, COALESCE(pinned_at, ?))", at, at)
}

func (s *Service) mute(ctx context.Context, c endpoint.Caller, r MuteReq) (wire.ConvState, error) {
	return s.change(ctx, c, r.ConvID, "muted = ?", r.Muted)
}

// hide removes the conversation from the list until a newer message arrives.
func (s *Service) hide(ctx context.Context, c endpoint.Caller, r HideReq) (wire.ConvState, error) {
	return s.change(ctx, c, r.ConvID, "hidden_seq = (SELECT c.last_seq FROM conversations c WHERE c.id = conversation_members.conv_id)")
}

var errNotMember = imerr.New(imerr.NotFound, "conversation not found")

// change applies one SET clause to the caller's member row and tells the caller's
// other devices.
func (s *Service) change(ctx context.Context, c endpoint.Caller, conv, set string, args ...any) (wire.ConvState, error) {
	args = append(args, c.UserID, conv)
	if _, err := s.db.ExecContext(ctx, "UPDATE conversation_members SET "+set+" WHERE user_id = ? AND conv_id = ?", args...); err != nil {
		return wire.ConvState{}, fmt.Errorf("update conversation state: %w", err)
	}
	st, err := s.state(ctx, c.UserID, conv)
	if err != nil {
		return wire.ConvState{}, err
	}
	s.deliver.Push(ctx, deliver.ToUser(c.UserID), wire.ConvUpdated{ConvState: st}, deliver.From(c))
	return st, nil
}

func (s *Service) state(ctx context.Context, user int64, conv string) (wire.ConvState, error) {
	st := wire.ConvState{ConvID: conv}
	var hidden, minSeq int64
	err := s.db.QueryRowContext(ctx, `SELECT m.pinned_at IS NOT NULL, m.muted, m.hidden_seq, m.read_seq, m.min_seq, c.last_seq
		FROM conversation_members m JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = ? AND m.conv_id = ?`, user, conv).
		Scan(&st.Pinned, &st.Muted, &hidden, &st.ReadSeq, &minSeq, &st.LastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return wire.ConvState{}, errNotMember
	}
	if err != nil {
		return wire.ConvState{}, fmt.Errorf("conversation state: %w", err)
	}
	st.Hidden = st.LastSeq <= hidden
	st.Unread = max(st.LastSeq-max(st.ReadSeq, minSeq), 0)
	return st, nil
}

type ReadReq struct {
	ConvID string `json:"conv_id"`
	Seq    int64  `json:"seq"` // read up to and including this seq
}

func (r *ReadReq) Validate() error {
	if err := validConv(r.ConvID); err != nil {
		return err
	}
	if r.Seq <= 0 {
		return errors.New("seq required")
	}
	return nil
}

// read moves the caller's read cursor forward (never back). The caller's other
// devices get "conv.updated" with the new unread count; in a 1:1 conversation the
// peer gets a "msg.read" receipt. Group receipts are asked for with msg.receipts.
func (s *Service) read(ctx context.Context, c endpoint.Caller, r ReadReq) (wire.ConvState, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE conversation_members m JOIN conversations c ON c.id = m.conv_id
		SET m.read_seq = ? WHERE m.user_id = ? AND m.conv_id = ? AND m.read_seq < ? AND c.last_seq >= ?`,
		r.Seq, c.UserID, r.ConvID, r.Seq, r.Seq)
	if err != nil {
		return wire.ConvState{}, fmt.Errorf("read cursor: %w", err)
	}
	moved, _ := res.RowsAffected()
	st, err := s.state(ctx, c.UserID, r.ConvID)
	if err != nil {
		return wire.ConvState{}, err
	}
	if moved == 0 {
		if r.Seq > st.LastSeq {
			return wire.ConvState{}, imerr.New(imerr.BadRequest, "seq %d is past the conversation's last message", r.Seq)
		}
		return st, nil // already read that far: a retry or an older device
	}
	s.deliver.Push(ctx, deliver.ToUser(c.UserID), wire.ConvUpdated{ConvState: st}, deliver.From(c))
	if id, err := convid.Parse(r.ConvID); err == nil && id.Kind == convid.Direct {
		s.deliver.Push(ctx, deliver.ToUser(id.Peer(c.UserID)), wire.MsgRead{ConvID: r.ConvID, UserID: c.UserID, Seq: st.ReadSeq}, deliver.Origin{})
	}
	return st, nil
}

func validConv(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("conv_id required")
	}
	return nil
}
