package dojob

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// getErr wraps err as net/http's Client.Do does.
func getErr(err error) error {
	return &url.Error{Op: "Get", URL: "http://127.0.0.1:1/f", Err: err}
}

// TestClassify: every kind of failure of an attempt gets its code, its
// context and its class (transient, retried; or fatal, ERROR at once).
func TestClassify(t *testing.T) {
	disk := localError(&fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC})
	proto := protocolError(ErrBlockSizeMismatch, "mismatch")
	unexpected := check(ask{sp: span{end: -1, whole: true}, size: SizeUnknown}, 204, http.Header{}, 0, time.Now()).err
	tests := []struct {
		name      string
		err       error
		code      HRESULT
		ctx       ErrorContext
		transient bool
	}{
		// Network errors: transient, GENERAL_TRANSPORT.
		{"connection refused", getErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), ErrCannotConnect, ErrorContextGeneralTransport, true},
		{"other dial failure", getErr(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route to host")}), ErrCannotConnect, ErrorContextGeneralTransport, true},
		{"name not resolved", getErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}), ErrNameNotResolved, ErrorContextGeneralTransport, true},
		{"connection reset", getErr(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), ErrConnectionError, ErrorContextGeneralTransport, true},
		{"body cut short", fmt.Errorf("body ended after 5 of 10 bytes: %w", io.ErrUnexpectedEOF), ErrConnectionError, ErrorContextGeneralTransport, true},
		{"EOF before headers", getErr(io.EOF), ErrConnectionError, ErrorContextGeneralTransport, true},
		{"read deadline", getErr(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), ErrTimeout, ErrorContextGeneralTransport, true},
		{"context deadline", getErr(context.DeadlineExceeded), ErrTimeout, ErrorContextGeneralTransport, true},
		// Stalls: transient ERROR_WINHTTP_TIMEOUT.
		{"stall", errStalled, ErrTimeout, ErrorContextGeneralTransport, true},
		// TLS: fatal.
		{"unknown authority", getErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), ErrCertValidation, ErrorContextGeneralTransport, false},
		{"bare unknown authority", getErr(x509.UnknownAuthorityError{}), ErrCertValidation, ErrorContextGeneralTransport, false},
		{"wrong host name", getErr(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "127.0.0.1"}), ErrCertValidation, ErrorContextGeneralTransport, false},
		{"expired", getErr(x509.CertificateInvalidError{Reason: x509.Expired}), ErrCertValidation, ErrorContextGeneralTransport, false},
		// Refused redirects: fatal.
		{"https to http", getErr(errInsecure), ErrRedirectFailed, ErrorContextGeneralTransport, false},
		{"too many redirects", getErr(errRedirects), ErrRedirectFailed, ErrorContextGeneralTransport, false},
		{"redirect to another scheme", getErr(errScheme), ErrRedirectFailed, ErrorContextGeneralTransport, false},
		{"refused by the caller's CheckRedirect", getErr(fmt.Errorf("%w: %w", errCallerRedirect, errors.New("no"))), ErrRedirectFailed, ErrorContextGeneralTransport, false},
		// Response headers over the transport's cap: fatal, REMOTE_FILE.
		{"headers over the cap (HTTP/1)", getErr(errors.New("net/http: server response headers exceeded 262144 bytes; aborted")), ErrHeaderSizeOverflow, ErrorContextRemoteFile, false},
		{"headers over the cap (HTTP/2)", getErr(errors.New("http2: response header list larger than advertised limit")), ErrHeaderSizeOverflow, ErrorContextRemoteFile, false},
		// JobErrors made earlier keep their code, context and class.
		{"local error", disk, ErrDiskFull, ErrorContextLocalFile, false},
		{"protocol error", proto, ErrBlockSizeMismatch, ErrorContextRemoteFile, false},
		{"status error", statusError(503, 0), HTTPStatus(503), ErrorContextRemoteFile, true},
		{"unexpected 2xx", unexpected, ErrUnexpectedStatus2xx, ErrorContextRemoteFile, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify(tt.err)
			assert.Equal(t, tt.code, e.Code, e.Code.Name())
			assert.Equal(t, tt.ctx, e.Context)
			assert.Equal(t, tt.transient, e.Transient())
			assert.ErrorIs(t, e, tt.code)
			var je *JobError
			if errors.As(tt.err, &je) {
				assert.Same(t, je, e, "a JobError is not wrapped again")
			} else {
				assert.Same(t, tt.err, e.Err, "the cause stays reachable")
			}
		})
	}
	assert.Same(t, disk, classify(fmt.Errorf("wrapped: %w", disk)))
}

// TestStatusError: 408, 425, 429 and 5xx except 501 and 505 are transient;
// every other status is fatal. All are BG_E_HTTP_ERROR_nnn in REMOTE_FILE.
func TestStatusError(t *testing.T) {
	transientCodes := map[int]bool{408: true, 425: true, 429: true}
	for code := 500; code <= 599; code++ {
		transientCodes[code] = code != 501 && code != 505
	}
	for _, code := range []int{101, 300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 425, 426, 428, 429, 431, 451, 499, 500, 501, 502, 503, 504, 505, 507, 511, 599} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			e := statusError(code, 0)
			assert.Equal(t, HTTPStatus(code), e.Code)
			assert.Equal(t, uint32(0x80190000+code), uint32(e.Code))
			assert.Equal(t, ErrorContextRemoteFile, e.Context)
			assert.Equal(t, transientCodes[code], e.Transient())
		})
	}
	for _, code := range []int{408, 425, 429, 500, 502, 503, 504, 599} {
		assert.True(t, statusError(code, 0).Transient(), code)
	}
	for _, code := range []int{400, 401, 403, 404, 410, 416, 501, 505} {
		assert.False(t, statusError(code, 0).Transient(), code)
	}
}

// TestLocalError: local failures are fatal LOCAL_FILE errors with the
// HRESULT of the OS error.
func TestLocalError(t *testing.T) {
	tests := []struct {
		err  error
		code HRESULT
	}{
		{syscall.ENOSPC, ErrDiskFull},
		{syscall.EACCES, ErrAccessDenied},
		{fs.ErrPermission, ErrAccessDenied},
		{syscall.EROFS, ErrWriteProtect},
		{syscall.ENOENT, ErrPathNotFound},
		{syscall.EIO, ErrFail},
		{errors.New("something else"), ErrFail},
	}
	for _, tt := range tests {
		e := localError(&fs.PathError{Op: "open", Path: "/d/.dojob-x-0.tmp", Err: tt.err})
		require.NotNil(t, e)
		assert.Equal(t, tt.code, e.Code, "%v", tt.err)
		assert.Equal(t, ErrorContextLocalFile, e.Context, "%v", tt.err)
		assert.False(t, e.Transient(), "%v", tt.err)
		assert.ErrorIs(t, e, tt.err)
	}
}

// TestRedactErr: redactErr hides the secrets of every error of a chain
// without modifying it, and leaves classify's verdict, errors.Is and
// errors.As as they were.
func TestRedactErr(t *testing.T) {
	const secretURL = "https://u:SECRETPW@h.example/f?X-Amz-Signature=SECRET1&x=1"
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	causes := []error{
		refused,
		context.DeadlineExceeded,
		&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}},
		errRedirects,
		fmt.Errorf("%w: %w", errCallerRedirect, fmt.Errorf("not %s: %w", secretURL, io.EOF)),
		errors.Join(errors.New("to "+secretURL), errScheme),
		errors.New("net/http: server response headers exceeded 262144 bytes; aborted"),
	}
	for _, cause := range causes {
		orig := &url.Error{Op: "Get", URL: secretURL, Err: cause}
		origText := orig.Error()
		got := redactErr(orig)
		assert.Equal(t, origText, orig.Error(), "the original is not modified")
		for e := got; e != nil; e = errors.Unwrap(e) {
			assert.NotContains(t, e.Error(), "SECRET")
		}
		want, have := classify(orig), classify(got)
		assert.Equal(t, want.Code, have.Code, cause.Error())
		assert.Equal(t, want.Context, have.Context)
		assert.Equal(t, want.Transient(), have.Transient())
		var ue *url.Error
		require.ErrorAs(t, got, &ue)
		assert.Equal(t, "https://u:xxxxx@h.example/f?X-Amz-Signature=REDACTED&x=1", ue.URL)
		assert.ErrorIs(t, got, cause)
	}
	assert.True(t, errors.Is(redactErr(&url.Error{Op: "Get", URL: secretURL, Err: refused}), syscall.ECONNREFUSED))
	var op *net.OpError
	require.ErrorAs(t, redactErr(&url.Error{Op: "Get", URL: secretURL, Err: refused}), &op)
	assert.Same(t, refused, op, "an error without a secret is not copied")
	plain := getErr(io.EOF)
	assert.Same(t, plain, redactErr(plain), "a chain without a secret is returned as it is")
}
