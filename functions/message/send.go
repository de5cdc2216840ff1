package message

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"natter/functions/deliver"
	"natter/functions/msgstore"
	"natter/functions/perm"
	"natter/functions/sensitive"
	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/wire"
)

// send stores a message and pushes it to the online devices of the conversation's
// members; the reply does not wait for a group's fan-out.
func (s *Service) send(ctx context.Context, c endpoint.Caller, r SendReq) (SendResp, error) {
	var content json.RawMessage
	var rich *RichContent
	var media MediaContent
	var err error
	if IsMedia(r.Type) {
		media, err = mediaRequest(r.Content)
	} else {
		content, rich, err = normalize(r.Type, r.Content, s.cfg.MaxTextRunes)
	}
	if err != nil {
		return SendResp{}, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	if err := s.typeAllowed(r.Type, c.UserID); err != nil {
		return SendResp{}, err
	}
	var verdict sensitive.Verdict
	if content != nil {
		if content, verdict, err = s.censor(content, rich); err != nil {
			return SendResp{}, err
		}
	} else if media.Caption != "" && s.words != nil {
		// A media message's caption takes the list as text does.
		if verdict = s.words.Check(media.Caption); verdict.Action == sensitive.Block {
			return SendResp{}, sensitive.ErrBlocked("the caption")
		}
		media.Caption = verdict.Text
	}
	var conv convid.ID
	if r.To != 0 {
		if r.To == c.UserID {
			return SendResp{}, imerr.New(imerr.BadRequest, "you cannot send a message to yourself")
		}
		conv = convid.OfDirect(c.UserID, r.To)
	} else if conv, err = convid.Parse(r.ConvID); err != nil {
		return SendResp{}, err
	}
	// The per-user send rate: one Redis round trip, before any database work.
	if err := s.allow(ctx, c.UserID, conv.Kind); err != nil {
		return SendResp{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if err != nil {
		return SendResp{}, err
	}
	if conv.Kind == convid.Direct && s.friends != nil {
		// Blocks and privacy; a cached answer in the worker, rarely a query.
		if err := s.friends.CanMessage(ctx, c.UserID, conv.Peer(c.UserID)); err != nil {
			return SendResp{}, err
		}
	}
	if err := s.maySend(conv, st); err != nil {
		return SendResp{}, err
	}
	var mentions msgstore.Mentions
	if rich != nil {
		if mentions, err = s.checkRich(ctx, c, conv, st, rich); err != nil {
			return SendResp{}, err
		}
	}
	if media.FileID != 0 {
		if content, err = s.mediaContent(ctx, c.UserID, r.Type, media, conv.Raw, r.ClientMsgID); err != nil {
			return SendResp{}, err
		}
	}
	if conv.Kind == convid.Direct {
		// The first message of a 1:1 conversation creates it, before it is queued.
		if err := s.store.EnsureDirect(ctx, conv); err != nil {
			return SendResp{}, err
		}
	}

	m := wire.Message{ConvID: conv.Raw, Sender: c.UserID, ClientMsgID: r.ClientMsgID, Type: r.Type, Content: content}
	// Pushes go out from the goroutine that committed, in commit order. A retry
	// pushes again: the first attempt may have stored the message and died before
	// pushing; clients drop what they already hold by seq.
	from := deliver.From(c)
	dup, err := s.store.Append(ctx, &m, msgstore.AppendOptions{Mentions: mentions,
		After: func(m *wire.Message, _ bool) {
			s.deliver.Push(ctx, deliver.ToMembers(conv, st.version), wire.MsgNew{Message: *m}, from)
		}})
	if errors.Is(err, msgstore.ErrNoConversation) {
		return SendResp{}, errNoConversation
	}
	if err != nil {
		var ie *imerr.Error
		if errors.As(err, &ie) {
			return SendResp{}, err
		}
		return SendResp{}, fmt.Errorf("store message: %w", err)
	}
	if verdict.Action == sensitive.Review && !dup {
		s.flag(ctx, m, verdict)
	}
	return SendResp{ConvID: m.ConvID, Seq: m.Seq, ID: m.ID, SentAt: m.SentAt, Duplicate: dup}, nil
}

// maySend applies a group's roles and mutes (1:1 rules are blocks and privacy).
func (s *Service) maySend(conv convid.ID, st standing) error {
	if conv.Kind == convid.Direct {
		return nil
	}
	if st.dismissed {
		return errDismissed
	}
	if err := perm.Check(perm.Send, st.role, nil, false); err != nil {
		return err
	}
	return perm.CheckSend(st.role, st.mutedUntil, st.muteAll, s.now())
}

// checkRich validates what the server relies on in rich content: mentioned users
// belong to the conversation, @all comes from a group's owner or admins, and a
// quoted seq exists and is visible to the sender.
func (s *Service) checkRich(ctx context.Context, c endpoint.Caller, conv convid.ID, st standing, r *RichContent) (msgstore.Mentions, error) {
	if r.ReplyTo > 0 {
		var one int
		err := s.db.QueryRowContext(ctx, "SELECT 1 FROM messages WHERE conv_id = ? AND seq = ? AND seq > ?", conv.Raw, r.ReplyTo, st.minSeq).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return msgstore.Mentions{}, imerr.New(imerr.BadRequest, "content.reply_to: no message %d in this conversation", r.ReplyTo)
		}
		if err != nil {
			return msgstore.Mentions{}, fmt.Errorf("reply_to: %w", err)
		}
	}
	m := msgstore.Mentions{Users: r.Mentions, All: r.MentionAll}
	if conv.Kind == convid.Direct {
		if r.MentionAll {
			return msgstore.Mentions{}, imerr.New(imerr.BadRequest, "content.mention_all: only in groups")
		}
		for _, u := range r.Mentions {
			if !conv.Has(u) {
				return msgstore.Mentions{}, imerr.New(imerr.BadRequest, "content.mentions: user %d is not in this conversation", u)
			}
		}
		return m, nil
	}
	if r.MentionAll {
		if err := perm.Check(perm.MentionAll, st.role, nil, false); err != nil {
			return msgstore.Mentions{}, err
		}
	}
	if len(r.Mentions) > 0 {
		args := []any{conv.Group}
		for _, u := range r.Mentions {
			args = append(args, u)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM group_members WHERE group_id = ? AND user_id IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(r.Mentions)), ",")+")", args...).Scan(&n); err != nil {
			return msgstore.Mentions{}, fmt.Errorf("mentions: %w", err)
		}
		if n != len(r.Mentions) {
			return msgstore.Mentions{}, imerr.New(imerr.BadRequest, "content.mentions: %d of the users are not members", len(r.Mentions)-n)
		}
	}
	return m, nil
}
