package risk

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"natter/functions/sensitive"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
)

// wordsList pages through the list by id.
func (s *Service) wordsList(ctx context.Context, _ endpoint.Caller, r WordsListReq) (WordsListResp, error) {
	limit := validate.Limit(r.Limit, defaultPage, maxPage)
	where, args := "id > ?", []any{r.After}
	if q := strings.TrimSpace(sensitive.FoldString(r.Q)); q != "" {
		where += " AND LOCATE(?, word) > 0"
		args = append(args, q)
	}
	out := WordsListResp{Words: []Word{}}
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sensitive_words WHERE "+where, args...).Scan(&out.Total); err != nil {
		return out, fmt.Errorf("count words: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, word, category, action, created_by, created_at FROM sensitive_words WHERE "+where+
		" ORDER BY id LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return out, fmt.Errorf("list words: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w Word
		var at time.Time
		if err := rows.Scan(&w.ID, &w.Word, &w.Category, &w.Action, &w.CreatedBy, &at); err != nil {
			return out, err
		}
		w.CreatedAt = at.UnixMilli()
		out.Words = append(out.Words, w)
	}
	if len(out.Words) > limit {
		out.Words, out.HasMore = out.Words[:limit], true
	}
	return out, rows.Err()
}

// wordsAdd adds words (stored folded) or changes the category and action of
// words already listed, then tells every worker to reload.
func (s *Service) wordsAdd(ctx context.Context, c endpoint.Caller, r WordsAddReq) (WordsAddResp, error) {
	var out WordsAddResp
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sensitive_words").Scan(&n); err != nil {
		return out, fmt.Errorf("count words: %w", err)
	}
	if n+len(r.Words) > sensitive.MaxWords {
		return out, imerr.New(imerr.Conflict, "the list holds at most %d words", sensitive.MaxWords)
	}
	q := "INSERT INTO sensitive_words (word, category, action, created_by) VALUES "
	args := make([]any, 0, 4*len(r.Words))
	for i, w := range r.Words {
		if i > 0 {
			q += ","
		}
		q += "(?, ?, ?, ?)"
		args = append(args, strings.TrimSpace(sensitive.FoldString(w.Word)), w.Category, w.Action, c.UserID)
	}
	var listed int
	words := make([]any, 0, len(r.Words))
	seen := map[string]bool{}
	for i := 0; i < len(args); i += 4 {
		if w := args[i].(string); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sensitive_words WHERE word IN (?"+strings.Repeat(", ?", len(words)-1)+")", words...).Scan(&listed); err != nil {
		return out, fmt.Errorf("count words: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, q+" ON DUPLICATE KEY UPDATE category = VALUES(category), action = VALUES(action)", args...); err != nil {
		return out, fmt.Errorf("add words: %w", err)
	}
	out.Added, out.Changed = len(words)-listed, listed
	s.wordsChanged(ctx)
	shown := r.Words
	if len(shown) > 50 {
		shown = shown[:50] // the rest are in the list
	}
	Record(ctx, s.audit, s.log, Entry(c, "admin.words.add", "words", nil, map[string]any{"count": len(r.Words), "words": shown}))
	return out, nil
}

// wordsRemove takes a word off the list.
func (s *Service) wordsRemove(ctx context.Context, c endpoint.Caller, r WordsRemoveReq) (Empty, error) {
	var w Word
	err := s.db.QueryRowContext(ctx, "SELECT word, category, action FROM sensitive_words WHERE id = ?", r.ID).Scan(&w.Word, &w.Category, &w.Action)
	if err == sql.ErrNoRows {
		return Empty{}, imerr.New(imerr.NotFound, "no word %d", r.ID)
	}
	if err != nil {
		return Empty{}, fmt.Errorf("find word: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sensitive_words WHERE id = ?", r.ID); err != nil {
		return Empty{}, fmt.Errorf("remove word: %w", err)
	}
	s.wordsChanged(ctx)
	Record(ctx, s.audit, s.log, Entry(c, "admin.words.remove", "word:"+strconv.FormatInt(r.ID, 10), w, nil))
	return Empty{}, nil
}
