package scenario

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strconv"
)

// formUpload writes the edge's streamed-upload form: size, then the file.
type formUpload struct{ w *multipart.Writer }

func newMultipart(w io.Writer) formUpload { return formUpload{multipart.NewWriter(w)} }

func (f formUpload) contentType() string { return f.w.FormDataContentType() }

func (f formUpload) write(name string, size int64, r io.Reader) error {
	if err := f.w.WriteField("size", strconv.FormatInt(size, 10)); err != nil {
		return err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", "application/octet-stream")
	part, err := f.w.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(part, r, size); err != nil {
		return err
	}
	return f.w.Close()
}
