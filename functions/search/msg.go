package search

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
)

// Orders of msg.search.
const (
	OrderNewest    = "newest"
	OrderRelevance = "relevance"
)

const (
	maxQueryRunes = 100
	defLimit      = 20
	maxLimit      = 50
	// relevanceWindow: order=relevance ranks the newest matches up to this
	// many and pages through them by offset.
	relevanceWindow = 200
)

// MsgSearchReq is msg.search.
type MsgSearchReq struct {
	Query  string `json:"query"`
	ConvID string `json:"conv_id,omitempty"`
	Sender int64  `json:"sender,omitempty"`
	Type   string `json:"type,omitempty"`
	Since  int64  `json:"since,omitempty"` // unix ms, inclusive
	Until  int64  `json:"until,omitempty"` // unix ms, exclusive
	Order  string `json:"order,omitempty"` // newest (default) or relevance
	// Before continues a newest-first page: the next_before of the last one.
	Before int64 `json:"before,omitempty,string"`
	// Offset continues a relevance page: the next_offset of the last one.
	Offset int `json:"offset,omitempty"`
	Limit  int `json:"limit,omitempty"`
}

func (r *MsgSearchReq) Validate() error {
	if err := validate.Text("query", r.Query, maxQueryRunes); err != nil {
		return err
	}
	if ParseQuery(r.Query).Empty() {
		return errors.New("query: no word to search")
	}
	if len(r.ConvID) > 64 || len(r.Type) > 16 || r.Sender < 0 || r.Since < 0 || r.Until < 0 || r.Before < 0 {
		return errors.New("filters: invalid")
	}
	if r.Order != "" && r.Order != OrderNewest && r.Order != OrderRelevance {
		return errors.New("order: newest or relevance")
	}
	if r.Offset < 0 || r.Offset >= relevanceWindow {
		return fmt.Errorf("offset: 0 to %d", relevanceWindow-1)
	}
	return nil
}

// MsgHit is one message found.
type MsgHit struct {
	ConvID  string  `json:"conv_id"`
	Seq     int64   `json:"seq"`
	ID      int64   `json:"id,string"`
	Sender  int64   `json:"sender"`
	Type    string  `json:"type"`
	SentAt  int64   `json:"sent_at"`
	Snippet Snippet `json:"snippet"`
}

// MsgSearchResp is msg.search's answer.
type MsgSearchResp struct {
	Hits    []MsgHit `json:"hits"`
	HasMore bool     `json:"has_more"`
	// NextBefore (newest first) or NextOffset (relevance) asks for the next page.
	NextBefore int64 `json:"next_before,omitempty,string"`
	NextOffset int   `json:"next_offset,omitempty"`
}

var errNoConversation = imerr.New(imerr.NotFound, "conversation not found")

// msgSearch finds the messages holding every word of the query in the
// conversations the caller is a member of, within the history shown to them
// (hidden conversations included, recalled messages never, edited ones in
// their latest version).
func (s *Service) msgSearch(ctx context.Context, c endpoint.Caller, r MsgSearchReq) (MsgSearchResp, error) {
	q := ParseQuery(r.Query)
	f := Filter{Sender: r.Sender, Type: r.Type}
	var err error
	if f.Scopes, err = s.scopes(ctx, c.UserID, r.ConvID); err != nil {
		return MsgSearchResp{}, err
	}
	if r.Since > 0 {
		f.Since = time.UnixMilli(r.Since)
	}
	if r.Until > 0 {
		f.Until = time.UnixMilli(r.Until)
	}
	limit := validate.Limit(r.Limit, defLimit, maxLimit)
	if r.Order == OrderRelevance {
		return s.byRelevance(ctx, f, q, r.Offset, limit)
	}
	f.BeforeID = r.Before
	hits, next, err := s.matches(ctx, f, q, limit+1)
	if err != nil {
		return MsgSearchResp{}, err
	}
	out := MsgSearchResp{Hits: make([]MsgHit, 0, limit)}
	if len(hits) > limit {
		hits = hits[:limit]
		next = hits[limit-1].hit.ID
	}
	for _, h := range hits {
		out.Hits = append(out.Hits, h.hit)
	}
	out.HasMore, out.NextBefore = next > 0, next
	return out, nil
}

// maxSearchConvs bounds the conversations one search reads: a user in more is
// searched in their most recently active ones.
const maxSearchConvs = 5000

// scopes reads what user may search, once per search: their memberships (a
// member who left has no row; min_seq hides what came before joining a group
// that hides history), or the one conversation named, not_found unless a
// member.
func (s *Service) scopes(ctx context.Context, user int64, convID string) ([]Scope, error) {
	q := "SELECT cm.conv_id, cm.min_seq FROM conversation_members cm LEFT JOIN conversations c ON c.id = cm.conv_id WHERE cm.user_id = ?"
	args := []any{user}
	if convID != "" {
		conv, err := convid.Parse(convID)
		if err != nil {
			return nil, err
		}
		q += " AND cm.conv_id = ?"
		args = append(args, conv.Raw)
	}
	q += " ORDER BY c.last_msg_at DESC LIMIT ?"
	args = append(args, maxSearchConvs)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search memberships: %w", err)
	}
	defer rows.Close()
	var out []Scope
	for rows.Next() {
		var sc Scope
		if err := rows.Scan(&sc.ConvID, &sc.MinSeq); err != nil {
			return nil, fmt.Errorf("search memberships: %w", err)
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search memberships: %w", err)
	}
	if convID != "" && len(out) == 0 {
		return nil, errNoConversation
	}
	return out, nil
}

type scored struct {
	hit   MsgHit
	score int
}

// matches returns up to want documents that match q, newest first, checking
// at most MaxScan candidates. next is where a search for more would go on (the
// last candidate checked), 0 when no candidate is left.
func (s *Service) matches(ctx context.Context, f Filter, q Query, want int) (out []scored, next int64, err error) {
	ranges := q.Ranges()
	scanned := 0
	for len(out) < want {
		if scanned >= s.cfg.MaxScan {
			return out, f.BeforeID, nil
		}
		batch := min(max(2*(want-len(out)), 20), s.cfg.MaxScan-scanned)
		docs, err := s.index.Candidates(ctx, f, ranges, batch)
		if err != nil {
			return nil, 0, err
		}
		scanned += len(docs)
		for _, d := range docs {
			f.BeforeID = d.ID
			spans, ok := q.Match(d.Body)
			if !ok {
				continue
			}
			out = append(out, scored{hit: MsgHit{ConvID: d.ConvID, Seq: d.Seq, ID: d.ID, Sender: d.Sender, Type: d.Type,
				SentAt: d.SentAt.UnixMilli(), Snippet: snippet(d.Body, spans)}, score: score(d.Body, spans)})
			if len(out) == want {
				return out, d.ID, nil
			}
		}
		if len(docs) < batch {
			return out, 0, nil // no candidate left
		}
	}
	return out, f.BeforeID, nil
}

// score ranks a match: the share of the text the matches cover (a short
// message that is mostly the query ranks first), in thousandths.
func score(body string, spans []span) int {
	covered := 0
	for _, s := range spans {
		covered += utf8.RuneCountInString(body[s.start:s.end])
	}
	return 1000 * covered / max(utf8.RuneCountInString(body), 1)
}

// byRelevance ranks the newest relevanceWindow matches by score (newest first
// among equals) and answers the page at offset.
func (s *Service) byRelevance(ctx context.Context, f Filter, q Query, offset, limit int) (MsgSearchResp, error) {
	all, _, err := s.matches(ctx, f, q, relevanceWindow)
	if err != nil {
		return MsgSearchResp{}, err
	}
	slices.SortStableFunc(all, func(a, b scored) int { return b.score - a.score })
	out := MsgSearchResp{Hits: []MsgHit{}}
	if offset >= len(all) {
		return out, nil
	}
	end := min(offset+limit, len(all))
	for _, h := range all[offset:end] {
		out.Hits = append(out.Hits, h.hit)
	}
	if end < len(all) {
		out.HasMore, out.NextOffset = true, end
	}
	return out, nil
}
