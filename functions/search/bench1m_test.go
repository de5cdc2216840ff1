//go:build searchbench

package search

// The 1,000,000-message benchmark of docs/benchmarks.md, kept out of `go tool
// task test` by its build tag:
//
//	MYSQL_DSN='root@tcp(127.0.0.1:3306)/natter_searchbench' \
//	  go test -tags searchbench -run TestSearch1M -v -timeout 2h ./functions/search/
//
// The first run creates the database (not dropped: a second run reuses it and
// only searches), 10,000 conversations of 100 messages (half Chinese, half
// English, from Zipf-distributed vocabularies), a user in 200 of them, and
// the index, with bulk INSERTs in primary-key order (not through msg.send, not
// through the indexer: that would take hours here). Then it searches as that
// user: 400 two-word queries newest first, 20 hits (100 each: English and
// Chinese, two words of one of the user's messages or two drawn from the
// vocabularies), after 50 queries to warm up, and prints the latencies.

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"natter/shared/config"
	"natter/shared/db"
	"natter/shared/endpoint"
)

const (
	benchConvs    = 10000
	benchPerConv  = 100
	benchUser     = 1
	benchUserEach = benchConvs / 200 // the user is in every 50th conversation
)

// A few hundred common English words; rarer ones are made of syllables.
var enCommon = strings.Fields(`the be to of and a in that have i it for not on with he as you do at this but his by from
they we say her she or an will my one all would there their what so up out if about who get which go me when make can
like time no just him know take people into year your good some could them see other than then now look only come its
over think also back after use two how our work first well way even new want because any these give day most us
meeting project report budget review plan team deadline schedule update release design customer market sales price order
invoice contract office travel flight hotel lunch dinner coffee weekend holiday birthday party family friend school
teacher student homework exam book movie music game phone email message call server database network deploy bug fix
test build code branch merge feature issue ticket support account password login payment bank card money cost share
photo video camera picture weather rain sunny cold warm city street car train bus station airport ticket morning
evening night tomorrow yesterday today week month monday friday sunday january summer winter spring autumn health
doctor hospital medicine sport football basketball running gym happy sorry thanks please welcome congratulations`)

// Common Chinese characters; words are pairs of them.
const zhChars = `的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单亲议会纪要预算报告审核项目计划团队截止日期安排更新发布设计客户市场销售价格订单发票合同办公旅行航班酒店午饭晚饭咖啡周末假期生日聚会家庭朋友学校老师学生作业考试电影音乐游戏手机邮件消息电话服务器数据库网络部署修复测试构建代码分支合并功能问题工单支持账户密码登录支付银行卡钱费用分享照片视频相机天气下雨晴天冷暖城市街道汽车火车公交车站机场票早上晚上明天昨天今天星期月份周一周五周日一月夏天冬天春天秋天健康医生医院药运动足球篮球跑步健身房开心抱歉谢谢欢迎祝贺`

type vocab struct {
	words []string
	zipf  *rand.Zipf
}

func (v *vocab) pick() string { return v.words[v.zipf.Uint64()] }

func newVocabs(r *rand.Rand) (en, zh *vocab) {
	seen := map[string]bool{}
	var enWords []string
	for _, w := range enCommon {
		if !seen[w] {
			seen[w] = true
			enWords = append(enWords, w)
		}
	}
	syl := strings.Fields("ka lo mi ne ru sa ti vo pe da fi gu ho ja ke li mo nu pa re so tu va we xi yo ze ban cor del fen gar hil jun kel lum mor nit pol quin ros sil tam ven wil")
	for len(enWords) < 20000 {
		w := ""
		for range 2 + r.IntN(3) {
			w += syl[r.IntN(len(syl))]
		}
		if !seen[w] {
			seen[w] = true
			enWords = append(enWords, w)
		}
	}
	chars := []rune(zhChars)
	var zhWords []string
	seen = map[string]bool{}
	// The tail of zhChars holds real two-character words: take those first.
	tail := chars[len(chars)-400:]
	for i := 0; i+1 < len(tail); i += 2 {
		w := string(tail[i : i+2])
		if !seen[w] {
			seen[w] = true
			zhWords = append(zhWords, w)
		}
	}
	for len(zhWords) < 20000 {
		w := string([]rune{chars[r.IntN(len(chars))], chars[r.IntN(len(chars))]})
		if !seen[w] {
			seen[w] = true
			zhWords = append(zhWords, w)
		}
	}
	en = &vocab{enWords, rand.NewZipf(r, 1.07, 8, uint64(len(enWords)-1))}
	zh = &vocab{zhWords, rand.NewZipf(r, 1.07, 8, uint64(len(zhWords)-1))}
	return en, zh
}

func sentence(r *rand.Rand, v *vocab, zh bool) string {
	n := 4 + r.IntN(9)
	var b strings.Builder
	for i := range n {
		if i > 0 && !zh {
			b.WriteByte(' ')
		}
		w := v.pick()
		if i == 0 && !zh {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		if zh && i == n/2 {
			b.WriteString("，")
		}
	}
	if zh {
		b.WriteString("。")
	} else {
		b.WriteString(".")
	}
	return b.String()
}

func TestSearch1M(t *testing.T) {
	ctx := context.Background()
	dsn := os.Getenv("MYSQL_DSN")
	if dsn == "" {
		dsn = "root@tcp(127.0.0.1:3306)/natter_searchbench"
	}
	if err := db.CreateDatabase(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(ctx, config.MySQL{DSN: dsn, MaxOpenConns: 8, MaxIdleConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := db.Migrate(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	en, zh := newVocabs(r)
	var have int
	if err := d.QueryRow("SELECT COUNT(*) FROM search_docs").Scan(&have); err != nil {
		t.Fatal(err)
	}
	if have < benchConvs*benchPerConv {
		generate(t, d, r, en, zh)
	} else {
		t.Logf("reusing %d indexed messages", have)
	}
	var postings, dataMB, indexMB float64
	if err := d.QueryRow(`SELECT TABLE_ROWS, DATA_LENGTH/1048576, INDEX_LENGTH/1048576 FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'search_postings'`).Scan(&postings, &dataMB, &indexMB); err != nil {
		t.Fatal(err)
	}
	t.Logf("search_postings: ~%.0f rows, %.0f MiB data", postings, dataMB)

	s, err := New(Deps{DB: d, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	kind, queries := queryGen(t, d, en, zh)
	me := endpoint.Caller{UserID: benchUser}
	run := func(qs []string) (lat map[string][]time.Duration, hits map[string]int) {
		lat, hits = map[string][]time.Duration{}, map[string]int{}
		for i, q := range qs {
			lang := kind(i)
			start := time.Now()
			resp, err := s.msgSearch(ctx, me, MsgSearchReq{Query: q})
			el := time.Since(start)
			if err != nil {
				t.Fatalf("%q: %v", q, err)
			}
			lat[lang] = append(lat[lang], el)
			lat["all"] = append(lat["all"], el)
			hits[lang] += len(resp.Hits)
		}
		return lat, hits
	}
	run(queries(50)) // warm-up
	lat, hits := run(queries(400))
	for _, k := range []string{"en-seen", "en-zipf", "zh-seen", "zh-zipf", "all"} {
		l := lat[k]
		slices.Sort(l)
		pct := func(p float64) time.Duration { return l[int(p*float64(len(l)-1))] }
		h := ""
		if k != "all" {
			h = ", " + strconv.FormatFloat(float64(hits[k])/float64(len(l)), 'f', 1, 64) + " hits/query"
		}
		t.Logf("%s: %d two-word queries: p50 %s p95 %s p99 %s max %s%s", k, len(l), pct(.5).Round(10*time.Microsecond),
			pct(.95).Round(10*time.Microsecond), pct(.99).Round(10*time.Microsecond), l[len(l)-1].Round(10*time.Microsecond), h)
	}
}

// queryGen makes the benchmark's queries: query i is English when i is even,
// Chinese when odd; two words of one of the user's messages ("seen") for i/2
// even, two words drawn from the vocabulary's distribution ("zipf") otherwise.
func queryGen(t *testing.T, d *sql.DB, en, zh *vocab) (kind func(int) string, queries func(int) []string) {
	// The user's own messages, for queries of words they saw.
	var seenEn, seenZh []string
	rows, err := d.Query("SELECT d.body FROM search_docs d JOIN conversation_members cm ON cm.conv_id = d.conv_id AND cm.user_id = ?", benchUser)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		if r, _ := utf8.DecodeRuneInString(body); isCJK(r) {
			seenZh = append(seenZh, body)
		} else {
			seenEn = append(seenEn, body)
		}
	}
	rows.Close()
	qr := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	kind = func(i int) string {
		k := "en"
		if i%2 == 1 {
			k = "zh"
		}
		if (i/2)%2 == 0 {
			return k + "-seen"
		}
		return k + "-zipf"
	}
	queries = func(n int) []string {
		var out []string
		for i := range n {
			switch kind(i) {
			case "en-seen":
				ws := strings.FieldsFunc(seenEn[qr.IntN(len(seenEn))], func(r rune) bool { return r == ' ' || r == '.' })
				a, b := qr.IntN(len(ws)), qr.IntN(len(ws))
				for ws[b] == ws[a] {
					b = qr.IntN(len(ws))
				}
				out = append(out, ws[a]+" "+ws[b])
			case "zh-seen":
				rs := []rune(strings.NewReplacer("，", "", "。", "").Replace(seenZh[qr.IntN(len(seenZh))]))
				for len(rs) < 6 {
					rs = []rune(strings.NewReplacer("，", "", "。", "").Replace(seenZh[qr.IntN(len(seenZh))]))
				}
				a := qr.IntN(len(rs) / 2)
				b := len(rs)/2 + qr.IntN(len(rs)-len(rs)/2-1)
				out = append(out, string(rs[a:a+2])+" "+string(rs[b:b+2]))
			default:
				v := en
				if i%2 == 1 {
					v = zh
				}
				a, b := v.pick(), v.pick()
				for b == a {
					b = v.pick()
				}
				out = append(out, a+" "+b)
			}
		}
		return out
	}
	return kind, queries
}

// generate writes the conversations, memberships, messages, documents and
// postings with multi-row INSERTs in primary-key order.
func generate(t *testing.T, d *sql.DB, r *rand.Rand, en, zh *vocab) {
	t.Helper()
	ctx := context.Background()
	for _, tb := range []string{"search_postings", "search_docs", "messages", "conversation_members", "conversations"} {
		if _, err := d.ExecContext(ctx, "TRUNCATE TABLE "+tb); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	convs := make([]string, benchConvs)
	for i := range convs {
		convs[i] = "g:" + strconv.Itoa(i+1)
	}
	sorted := slices.Clone(convs)
	slices.Sort(sorted)
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	exec := func(q string) {
		if _, err := d.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.200s: %v", q, err)
		}
	}
	// conversations and members: the user in every 50th, four others each.
	var b strings.Builder
	flush := func(head string, n *int) {
		if *n > 0 {
			exec(head + b.String())
		}
		b.Reset()
		*n = 0
	}
	n := 0
	for i, c := range convs {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "('%s',2,%d,%d)", c, benchPerConv, 0)
		n++
		if n == 1000 || i == len(convs)-1 {
			flush("INSERT INTO conversations (id, kind, last_seq, last_mod) VALUES ", &n)
		}
	}
	for i, c := range convs {
		members := []int{1000 + 4*i, 1001 + 4*i, 1002 + 4*i, 1003 + 4*i}
		if i%benchUserEach == 0 {
			members = append(members, benchUser)
		}
		for _, u := range members {
			if n > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,'%s',0,%d)", u, c, i+1)
			n++
		}
		if n >= 1000 || i == len(convs)-1 {
			flush("INSERT INTO conversation_members (user_id, conv_id, min_seq, target_id) VALUES ", &n)
		}
	}
	// Message k (seq-major, so time runs across conversations) is seq of
	// conversation i: Chinese when seq+i is even.
	type post struct {
		tok  Token
		conv int32 // rank of the conversation id in string order
		seq  int32
		id   int64
	}
	rank := make(map[string]int32, len(sorted))
	for i, c := range sorted {
		rank[c] = int32(i)
	}
	posts := make([]post, 0, 30_000_000)
	texts := make([]string, benchConvs*benchPerConv)
	for seq := 1; seq <= benchPerConv; seq++ {
		for i := range convs {
			var s string
			if (seq+i)%2 == 0 { // every conversation half Chinese, half English
				s = sentence(r, zh, true)
			} else {
				s = sentence(r, en, false)
			}
			texts[i*benchPerConv+seq-1] = s
			for _, tok := range Tokens(s) {
				posts = append(posts, post{tok, rank[convs[i]], int32(seq), int64((seq-1)*benchConvs + i + 1)})
			}
		}
	}
	t.Logf("generated %d messages, %d postings in %s", len(texts), len(posts), time.Since(start).Round(time.Second))
	esc := func(s string) string { return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) }
	// messages and documents in (conv_id, seq) order.
	step := time.Now()
	for _, c := range sorted {
		var i int
		fmt.Sscanf(c, "g:%d", &i)
		i--
		var mb, db strings.Builder
		for seq := 1; seq <= benchPerConv; seq++ {
			k := (seq-1)*benchConvs + i
			id := int64(k + 1)
			sent := base.Add(time.Duration(k) * 50 * time.Millisecond).Format("2006-01-02 15:04:05.000")
			text := esc(texts[i*benchPerConv+seq-1])
			sender := 1000 + 4*i + seq%4
			if seq > 1 {
				mb.WriteByte(',')
				db.WriteByte(',')
			}
			fmt.Fprintf(&mb, `('%s',%d,%d,%d,'b%d','text','{"text":"%s"}','%s')`, c, seq, id, sender, id, text, sent)
			fmt.Fprintf(&db, `('%s',%d,%d,%d,'text','%s',0,'%s')`, c, seq, id, sender, sent, text)
		}
		exec("INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, content, created_at) VALUES " + mb.String())
		exec("INSERT INTO search_docs (conv_id, seq, msg_id, sender_id, kind, sent_at, mod_seq, body) VALUES " + db.String())
	}
	t.Logf("messages and search_docs inserted in %s", time.Since(step).Round(time.Second))
	step = time.Now()
	slices.SortFunc(posts, func(a, b post) int {
		switch {
		case a.conv != b.conv:
			return int(a.conv - b.conv)
		case a.tok != b.tok:
			if a.tok < b.tok {
				return -1
			}
			return 1
		}
		return int(a.seq - b.seq)
	})
	posts = slices.Compact(posts)
	for i := 0; i < len(posts); i += 5000 {
		b.Reset()
		for j, p := range posts[i:min(i+5000, len(posts))] {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "('%s',%d,%d,%d)", sorted[p.conv], uint64(p.tok), p.seq, p.id)
		}
		exec("INSERT INTO search_postings (conv_id, token, seq, msg_id) VALUES " + b.String())
	}
	t.Logf("%d postings inserted in %s", len(posts), time.Since(step).Round(time.Second))
	exec("ANALYZE TABLE search_postings, search_docs, conversation_members")
}

// TestSearch1MFulltext measures the alternative the index did not take, on the
// data TestSearch1M generated: the same tokens as 17-character hex words in
// an InnoDB FULLTEXT column (no minimum size or stopword can hit them),
// searched IN BOOLEAN MODE, the caller's memberships joined after the match.
//
//	MYSQL_DSN=... go test -tags searchbench -run TestSearch1MFulltext -v -timeout 2h ./functions/search/
func TestSearch1MFulltext(t *testing.T) {
	ctx := context.Background()
	dsn := os.Getenv("MYSQL_DSN")
	if dsn == "" {
		dsn = "root@tcp(127.0.0.1:3306)/natter_searchbench"
	}
	d, err := db.Open(ctx, config.MySQL{DSN: dsn, MaxOpenConns: 8, MaxIdleConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := rand.New(rand.NewPCG(1, 2))
	en, zh := newVocabs(r)
	// A token as a 17-character word ("t" and its hex), so that a range of
	// tokens (a prefix of bytes) is a prefix of hex digits: MATCH's "word*".
	word := func(tok Token) string { return fmt.Sprintf("t%016x", uint64(tok)) }
	rangeTerm := func(r TokenRange) string {
		if r.Lo == r.Hi {
			return "+" + word(r.Lo)
		}
		prefix := 8 - bits.Len64(uint64(r.Hi-r.Lo))/8 // bytes the range fixes
		return "+" + word(r.Lo)[:1+2*prefix] + "*"
	}
	var have int
	_ = d.QueryRow("SELECT COUNT(*) FROM search_ft").Scan(&have)
	if have < benchConvs*benchPerConv {
		start := time.Now()
		for _, q := range []string{"DROP TABLE IF EXISTS search_ft", `CREATE TABLE search_ft (
			conv_id VARCHAR(64) NOT NULL, seq BIGINT UNSIGNED NOT NULL, msg_id BIGINT UNSIGNED NOT NULL,
			toks MEDIUMTEXT NOT NULL, PRIMARY KEY (conv_id, seq)) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin`} {
			if _, err := d.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		lastC, lastS := "", int64(0)
		for {
			rows, err := d.QueryContext(ctx, "SELECT conv_id, seq, msg_id, body FROM search_docs WHERE conv_id > ? OR (conv_id = ? AND seq > ?) ORDER BY conv_id, seq LIMIT 2000", lastC, lastC, lastS)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			n := 0
			for rows.Next() {
				var c, body string
				var seq, id int64
				if err := rows.Scan(&c, &seq, &id, &body); err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					b.WriteByte(',')
				}
				n++
				ws := make([]string, 0, 32)
				for _, tok := range Tokens(body) {
					ws = append(ws, word(tok))
				}
				fmt.Fprintf(&b, "('%s',%d,%d,'%s')", c, seq, id, strings.Join(ws, " "))
				lastC, lastS = c, seq
			}
			rows.Close()
			if n == 0 {
				break
			}
			if _, err := d.ExecContext(ctx, "INSERT INTO search_ft (conv_id, seq, msg_id, toks) VALUES "+b.String()); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("search_ft rows in %s", time.Since(start).Round(time.Second))
		start = time.Now()
		if _, err := d.ExecContext(ctx, "ALTER TABLE search_ft ADD FULLTEXT KEY ft_toks (toks)"); err != nil {
			t.Fatal(err)
		}
		t.Logf("FULLTEXT index built in %s", time.Since(start).Round(time.Second))
	}
	kind, queries := queryGen(t, d, en, zh)
	lat := map[string][]time.Duration{}
	hits := map[string]int{}
	run := func(qs []string, keep bool) {
		for i, q := range qs {
			lang := kind(i)
			var terms []string
			for _, r := range ParseQuery(q).Ranges() {
				terms = append(terms, rangeTerm(r))
			}
			start := time.Now()
			rows, err := d.QueryContext(ctx, `SELECT d.conv_id, d.seq FROM search_ft d
			JOIN conversation_members cm ON cm.user_id = ? AND cm.conv_id = d.conv_id AND d.seq > cm.min_seq
			WHERE MATCH(d.toks) AGAINST (? IN BOOLEAN MODE) ORDER BY d.msg_id DESC LIMIT 21`, benchUser, strings.Join(terms, " "))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			el := time.Since(start)
			if !keep {
				continue // warm-up
			}
			lat[lang] = append(lat[lang], el)
			lat["all"] = append(lat["all"], el)
			hits[lang] += n
		}
	}
	run(queries(50), false)
	run(queries(400), true)
	for _, k := range []string{"en-seen", "en-zipf", "zh-seen", "zh-zipf", "all"} {
		l := lat[k]
		slices.Sort(l)
		pct := func(p float64) time.Duration { return l[int(p*float64(len(l)-1))] }
		t.Logf("FULLTEXT %s: %d two-word queries: p50 %s p95 %s p99 %s max %s, %d rows", k, len(l), pct(.5).Round(10*time.Microsecond),
			pct(.95).Round(10*time.Microsecond), pct(.99).Round(10*time.Microsecond), l[len(l)-1].Round(10*time.Microsecond), hits[k])
	}
}
