package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/subject"
	"natter/shared/wire"
)

// send stores a message and pushes it to the online devices of both sides.
//
// Hot path: one transaction of three round trips (bump the conversation's seq,
// insert, commit), then one publish per recipient user. The seq bump takes the
// conversation row lock, so seqs are gap-free and strictly increasing in commit
// order; a duplicate client_msg_id rolls the bump back and returns the first row.
func (s *Service) send(ctx context.Context, c endpoint.Caller, r SendReq) (SendResp, error) {
	content, err := normalize(r.Type, r.Content, s.cfg.MaxTextRunes)
	if err != nil {
		return SendResp{}, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	var conv parsedConv
	if r.To != 0 {
		if r.To == c.UserID {
			return SendResp{}, imerr.New(imerr.BadRequest, "cannot send a message to yourself")
		}
		conv, err = parseConv(directID(c.UserID, r.To), c)
	} else {
		conv, err = parseConv(r.ConvID, c)
	}
	if err != nil {
		return SendResp{}, err
	}
	if !conv.member {
		return SendResp{}, imerr.New(imerr.Forbidden, "not a member of this conversation")
	}

	now := s.now().UTC().Truncate(time.Millisecond)
	msg := Message{ConvID: conv.id, ID: s.ids.Next(), Sender: c.UserID, ClientMsgID: r.ClientMsgID, Type: r.Type, Content: content, SentAt: now.UnixMilli()}
	dup := false
	store := func(tx *sql.Tx) error {
		seq, err := s.nextSeq(ctx, tx, conv.id, now)
		if err != nil {
			return err
		}
		msg.Seq = seq
		_, err = tx.ExecContext(ctx, "INSERT INTO messages ("+msgColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			msg.ConvID, msg.Seq, msg.ID, msg.Sender, msg.ClientMsgID, msg.Type, []byte(msg.Content), now)
		if db.IsDuplicate(err) {
			dup = true
			return errRetried
		}
		return err
	}
	err = db.InTx(ctx, s.db, store)
	if errors.Is(err, errNoConversation) {
		// First message: create the conversation in its own statements (not inside
		// the send transaction, where concurrent creators would deadlock on gap
		// locks), then store as usual.
		if err = s.createDirect(ctx, conv); err == nil {
			err = db.InTx(ctx, s.db, store)
		}
	}
	if errors.Is(err, errRetried) {
		msg, err = s.byClientID(ctx, conv.id, c.UserID, r.ClientMsgID)
	}
	if err != nil {
		return SendResp{}, fmt.Errorf("store message: %w", err)
	}
	// Also on a retry: the first attempt may have stored the message and died before
	// pushing; clients drop what they already hold by seq.
	s.deliver(ctx, c, conv, msg)
	return SendResp{ConvID: msg.ConvID, Seq: msg.Seq, ID: msg.ID, SentAt: msg.SentAt, Duplicate: dup}, nil
}

// errRetried rolls back the transaction of a send whose client_msg_id is stored.
var errRetried = errors.New("client_msg_id already stored")

// errNoConversation aborts a send to a conversation that has no row yet.
var errNoConversation = errors.New("conversation not created yet")

// nextSeq bumps the conversation's seq inside tx and returns it.
func (s *Service) nextSeq(ctx context.Context, tx *sql.Tx, conv string, now time.Time) (int64, error) {
	// LAST_INSERT_ID(expr) hands the new value back in the OK packet: no SELECT.
	res, err := tx.ExecContext(ctx, "UPDATE conversations SET last_seq = LAST_INSERT_ID(last_seq + 1), last_msg_at = ? WHERE id = ?", now, conv)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, errNoConversation
	}
	return res.LastInsertId()
}

// createDirect creates a 1:1 conversation and its two members, if both users exist.
// INSERT IGNORE makes concurrent first sends harmless.
func (s *Service) createDirect(ctx context.Context, conv parsedConv) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id IN (?, ?)", conv.a, conv.b).Scan(&n); err != nil {
		return fmt.Errorf("check users: %w", err)
	}
	if n != 2 {
		return imerr.New(imerr.NotFound, "user not found")
	}
	// One transaction so a conversation never exists without its members.
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO conversations (id, kind) VALUES (?, ?)", conv.id, kindDirect); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT IGNORE INTO conversation_members (user_id, conv_id) VALUES (?, ?), (?, ?)", conv.a, conv.id, conv.b, conv.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("create conversation %s: %w", conv.id, err)
	}
	return nil
}

func (s *Service) byClientID(ctx context.Context, conv string, sender int64, clientID string) (Message, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+msgColumns+" FROM messages WHERE conv_id = ? AND sender_id = ? AND client_msg_id = ?", conv, sender, clientID)
	if err != nil {
		return Message{}, err
	}
	ms, err := scanMessages(rows, nil)
	if err != nil {
		return Message{}, err
	}
	if len(ms) != 1 {
		return Message{}, fmt.Errorf("retried message %s/%s not found", conv, clientID)
	}
	return ms[0], nil
}

// deliver encodes the msg.new frame once and publishes it to every member's
// delivery subject; the sending connection is skipped (it has the reply).
func (s *Service) deliver(ctx context.Context, c endpoint.Caller, conv parsedConv, m Message) {
	frame, err := wire.EncodePush("msg.new", m)
	if err != nil {
		logging.From(ctx).Error().Err(err).Msg("encode push")
		return
	}
	h := nats.Header{}
	if c.ConnID != "" {
		h.Set(wire.HeaderSkipConn, c.ConnID)
	}
	for _, uid := range [2]int64{conv.a, conv.b} {
		if err := s.nc.PublishMsg(&nats.Msg{Subject: subject.Deliver(uid), Data: frame, Header: h}); err != nil {
			// At most once by design: the recipient catches up by seq through sync.
			logging.From(ctx).Warn().Err(err).Int64("to", uid).Msg("push failed")
		}
	}
}
