package risk

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"natter/functions/sensitive"
	"natter/shared/validate"
)

// Bounds of requests and pages.
const (
	maxWordRunes    = 64
	maxCategory     = 32
	maxWordsPerAdd  = 1000
	maxPage         = 200
	defaultPage     = 50
	maxNote         = 500
	maxExcerpt      = 2000
	maxPendingByOne = 100 // pending reports one user may have
)

// WordIn is a word to add; adding a word again changes its category and action.
type WordIn struct {
	Word     string `json:"word"`
	Category string `json:"category,omitempty"`
	Action   string `json:"action"` // block | mask | review
}

// WordsAddReq is admin.words.add.
type WordsAddReq struct {
	Words []WordIn `json:"words"`
}

func (r *WordsAddReq) Validate() error {
	if len(r.Words) == 0 || len(r.Words) > maxWordsPerAdd {
		return fmt.Errorf("words: 1 to %d", maxWordsPerAdd)
	}
	for i, w := range r.Words {
		f := strings.TrimSpace(sensitive.FoldString(w.Word))
		if f == "" || utf8.RuneCountInString(f) > maxWordRunes || !utf8.ValidString(f) {
			return fmt.Errorf("words[%d].word: 1 to %d characters", i, maxWordRunes)
		}
		if _, ok := sensitive.ParseAction(w.Action); !ok {
			return fmt.Errorf("words[%d].action: block, mask or review", i)
		}
		if err := validate.Text(fmt.Sprintf("words[%d].category", i), w.Category, maxCategory); err != nil {
			return err
		}
	}
	return nil
}

// WordsAddResp answers admin.words.add.
type WordsAddResp struct {
	Added   int `json:"added"`
	Changed int `json:"changed"`
}

// Word is a row of the list.
type Word struct {
	ID        int64  `json:"id"`
	Word      string `json:"word"`
	Category  string `json:"category"`
	Action    string `json:"action"`
	CreatedBy int64  `json:"created_by"`
	CreatedAt int64  `json:"created_at"`
}

// WordsListReq is admin.words.list: a page by id, optionally words containing Q.
type WordsListReq struct {
	After int64  `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	Q     string `json:"q,omitempty"`
}

func (r *WordsListReq) Validate() error {
	if r.After < 0 || r.Limit < 0 {
		return errors.New("after and limit: not negative")
	}
	return validate.Text("q", r.Q, maxWordRunes)
}

// WordsListResp answers admin.words.list.
type WordsListResp struct {
	Words   []Word `json:"words"`
	Total   int    `json:"total"`
	HasMore bool   `json:"has_more"`
}

// WordsRemoveReq is admin.words.remove.
type WordsRemoveReq struct {
	ID int64 `json:"id"`
}

func (r *WordsRemoveReq) Validate() error {
	if r.ID <= 0 {
		return errors.New("id required")
	}
	return nil
}

// Empty is an answer without content.
type Empty struct{}

// Report reasons.
var reasons = map[string]bool{"spam": true, "abuse": true, "fraud": true, "illegal": true, "other": true}

// ReportReq is report.submit: a message (conv_id and seq) or a user (user_id).
type ReportReq struct {
	ConvID string `json:"conv_id,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	UserID int64  `json:"user_id,omitempty"`
	Reason string `json:"reason"`
	Note   string `json:"note,omitempty"`
}

func (r *ReportReq) Validate() error {
	msg := r.ConvID != "" || r.Seq != 0
	if msg == (r.UserID != 0) {
		return errors.New("give a message (conv_id and seq) or a user (user_id)")
	}
	if msg && (r.ConvID == "" || r.Seq <= 0) {
		return errors.New("conv_id and seq required")
	}
	if r.UserID < 0 {
		return errors.New("user_id: invalid")
	}
	if !reasons[r.Reason] {
		return errors.New("reason: spam, abuse, fraud, illegal or other")
	}
	return validate.Text("note", r.Note, maxNote)
}

// ReportResp answers report.submit. Reporting the same thing again answers the first
// report's id.
type ReportResp struct {
	ID int64 `json:"id"`
}

// Item is an entry of the review queue.
type Item struct {
	ID         int64  `json:"id"`
	Source     string `json:"source"` // word | report
	Kind       string `json:"kind"`   // message | user
	ConvID     string `json:"conv_id,omitempty"`
	Seq        int64  `json:"seq,omitempty"`
	TargetUser int64  `json:"target_user"`
	ReporterID int64  `json:"reporter_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Note       string `json:"note,omitempty"`
	Excerpt    string `json:"excerpt"`
	Words      string `json:"words,omitempty"`
	Status     string `json:"status"`
	HandledBy  int64  `json:"handled_by,omitempty"`
	HandledAt  int64  `json:"handled_at,omitempty"`
	CreatedAt  int64  `json:"created_at"`
}

// Review statuses.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusDeleted  = "deleted"
)

// ReviewListReq is admin.review.list: items of one status (pending when empty),
// oldest first, a page after an id.
type ReviewListReq struct {
	Status string `json:"status,omitempty"`
	After  int64  `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

func (r *ReviewListReq) Validate() error {
	switch r.Status {
	case "", StatusPending, StatusApproved, StatusDeleted:
	default:
		return errors.New("status: pending, approved or deleted")
	}
	if r.After < 0 || r.Limit < 0 {
		return errors.New("after and limit: not negative")
	}
	return nil
}

// ReviewListResp answers admin.review.list.
type ReviewListResp struct {
	Items   []Item `json:"items"`
	HasMore bool   `json:"has_more"`
}

// ReviewReq is admin.review.approve.
type ReviewReq struct {
	ID int64 `json:"id"`
}

func (r *ReviewReq) Validate() error {
	if r.ID <= 0 {
		return errors.New("id required")
	}
	return nil
}

// ReviewDeleteReq is admin.review.delete: the message is removed for everyone
// (a reported user has none: give ban), and with Ban its sender (or the
// reported user) is banned, until BanUntil (unix ms; 0: for good).
type ReviewDeleteReq struct {
	ID        int64  `json:"id"`
	Ban       bool   `json:"ban,omitempty"`
	BanReason string `json:"ban_reason,omitempty"`
	BanUntil  int64  `json:"ban_until,omitempty"`
}

func (r *ReviewDeleteReq) Validate() error {
	if r.ID <= 0 {
		return errors.New("id required")
	}
	if r.BanUntil < 0 {
		return errors.New("ban_until: invalid")
	}
	return validate.Text("ban_reason", r.BanReason, maxNote)
}

// excerpt cuts s to maxExcerpt bytes on a rune boundary.
func excerpt(s string) string {
	if len(s) <= maxExcerpt {
		return s
	}
	cut := maxExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
