package message

import (
	"context"
	"errors"
	"fmt"

	"natter/functions/group/perm"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/wire"
)

// send stores a message and pushes it to the online devices of the conversation's
// members; the reply does not wait for a group's fan-out.
func (s *Service) send(ctx context.Context, c endpoint.Caller, r SendReq) (SendResp, error) {
	content, err := normalize(r.Type, r.Content, s.cfg.MaxTextRunes)
	if err != nil {
		return SendResp{}, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	id := r.ConvID
	if r.To != 0 {
		if r.To == c.UserID {
			return SendResp{}, imerr.New(imerr.BadRequest, "cannot send a message to yourself")
		}
		id = directID(c.UserID, r.To)
	}
	conv, err := parseConv(id)
	if err != nil {
		return SendResp{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if err != nil {
		return SendResp{}, err
	}
	if err := s.maySend(ctx, c, conv, st); err != nil {
		return SendResp{}, err
	}

	m := Message{ConvID: conv.id, Sender: c.UserID, ClientMsgID: r.ClientMsgID, Type: r.Type, Content: content}
	dup, err := s.store.Append(ctx, &m)
	if errors.Is(err, ErrNoConversation) && conv.kind == kindDirect {
		// First message of a 1:1 conversation: create it, then store as usual.
		if err = s.store.createDirect(ctx, conv); err == nil {
			dup, err = s.store.Append(ctx, &m)
		}
	}
	if errors.Is(err, ErrNoConversation) {
		return SendResp{}, imerr.New(imerr.NotFound, "conversation not found")
	}
	if err != nil {
		var ie *imerr.Error
		if errors.As(err, &ie) {
			return SendResp{}, err
		}
		return SendResp{}, fmt.Errorf("store message: %w", err)
	}
	// Also on a retry: the first attempt may have stored the message and died before
	// pushing; clients drop what they already hold by seq.
	s.deliver(ctx, c, conv, m)
	return SendResp{ConvID: m.ConvID, Seq: m.Seq, ID: m.ID, SentAt: m.SentAt, Duplicate: dup}, nil
}

// maySend applies blocks and privacy (1:1) or roles and mutes (groups).
func (s *Service) maySend(ctx context.Context, c endpoint.Caller, conv parsedConv, st standing) error {
	if conv.kind == kindDirect {
		if s.friends == nil {
			return nil
		}
		return s.friends.CanMessage(ctx, c.UserID, conv.peer(c.UserID))
	}
	if st.dismissed {
		return imerr.New(imerr.Forbidden, "this group was dismissed")
	}
	if err := perm.Check(perm.Send, st.role, nil, false); err != nil {
		return err
	}
	return perm.CheckSend(st.role, st.mutedUntil, st.muteAll, s.now())
}

// deliver encodes the msg.new frame once and publishes it to the members' delivery
// subjects; the sending connection is skipped (it has the reply).
func (s *Service) deliver(ctx context.Context, c endpoint.Caller, conv parsedConv, m Message) {
	frame, err := wire.EncodePush("msg.new", m)
	if err != nil {
		logging.From(ctx).Error().Err(err).Msg("encode push")
		return
	}
	if conv.kind == kindDirect {
		s.fan.ToUsers([]int64{conv.a, conv.b}, frame, c.ConnID)
		return
	}
	s.fan.ToConversation(ctx, conv.id, frame, c.ConnID)
}
