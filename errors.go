package dojob

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// HRESULT is a Windows result code as DO and BITS report it. It implements
// error, so the sentinel codes below can be compared with errors.Is and
// extracted with errors.As:
//
//	var hr dojob.HRESULT
//	if errors.As(err, &hr) { log.Printf("code %#x", uint32(hr)) }
//
// The zero value is S_OK, which is not an error code; dojob never returns it
// as an error. HRESULT values are immutable and safe for concurrent use.
type HRESULT uint32

// The codes dojob returns. Names and values follow the DO and BITS headers;
// the DO code is used where DO and BITS both define one.
const (
	// ErrNoService (DO_E_NO_SERVICE): the Manager is closed, so it can no
	// longer provide the service.
	ErrNoService HRESULT = 0x80D01001
	// ErrNoProgress (DO_E_DOWNLOAD_NO_PROGRESS): the job made no progress
	// within its no-progress timeout.
	ErrNoProgress HRESULT = 0x80D02002
	// ErrJobNotFound (DO_E_JOB_NOT_FOUND): no such job in the Manager.
	ErrJobNotFound HRESULT = 0x80D02003
	// ErrJobEmpty (DO_E_JOB_EMPTY): Resume on a job that holds no file.
	ErrJobEmpty HRESULT = 0x80D02004
	// ErrFileNotAvailable (DO_E_FILE_NOT_AVAILABLE): the error is not tied
	// to a file. JobError.FileInfo returns it, as IBackgroundCopyError's
	// GetFile does.
	ErrFileNotAvailable HRESULT = 0x80D02010
	// ErrInvalidState (DO_E_INVALID_STATE): the call is not allowed in the
	// job's state (ACKNOWLEDGED or CANCELLED).
	ErrInvalidState HRESULT = 0x80D02013
	// ErrErrorInformationUnavailable (DO_E_ERROR_INFORMATION_UNAVAILABLE):
	// the job is in neither ERROR nor TRANSIENT_ERROR.
	ErrErrorInformationUnavailable HRESULT = 0x80D02014
	// ErrBlockSizeMismatch (DO_E_HTTP_BLOCKSIZE_MISMATCH): the server sent
	// more or other bytes than it announced.
	ErrBlockSizeMismatch HRESULT = 0x80D05001
	// ErrCertValidation (DO_E_HTTP_CERT_VALIDATION): the server's TLS
	// certificate did not verify.
	ErrCertValidation HRESULT = 0x80D05002
	// ErrCertExpired (CERT_E_EXPIRED): the server's certificate is expired
	// or not yet valid. A JobError with Code ErrCertValidation also
	// matches it (errors.Is; JobError.FailedCheck).
	ErrCertExpired HRESULT = 0x800B0101
	// ErrCertUntrustedRoot (CERT_E_UNTRUSTEDROOT): the server's certificate
	// does not chain to a trusted root. A JobError with Code ErrCertValidation
	// also matches it (errors.Is; JobError.FailedCheck).
	ErrCertUntrustedRoot HRESULT = 0x800B0109
	// ErrCertCNNoMatch (CERT_E_CN_NO_MATCH): the server's certificate is for
	// another host name. A JobError with Code ErrCertValidation also
	// matches it (errors.Is; JobError.FailedCheck).
	ErrCertCNNoMatch HRESULT = 0x800B010F
	// ErrCertWrongUsage (CERT_E_WRONG_USAGE): the server's certificate is
	// not for server authentication. A JobError with Code ErrCertValidation
	// also matches it (errors.Is; JobError.FailedCheck).
	ErrCertWrongUsage HRESULT = 0x800B0110
	// ErrClientCertNeeded (ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED): the
	// server requires a client certificate the job did not present (or a
	// reloaded job's certificate, which is not persisted, was not set
	// again). Fatal, in GENERAL_TRANSPORT.
	ErrClientCertNeeded HRESULT = 0x80072F0C
	// ErrSecureFailure (ERROR_WINHTTP_SECURE_FAILURE): the server refused
	// the TLS handshake, often the client certificate. Fatal, in
	// GENERAL_TRANSPORT.
	ErrSecureFailure HRESULT = 0x80072F8F
	// ErrProxyListTooLarge (BG_E_PROXY_LIST_TOO_LARGE): a proxy list over
	// 4,000 characters.
	ErrProxyListTooLarge HRESULT = 0x80200018
	// ErrProxyBypassListTooLarge (BG_E_PROXY_BYPASS_LIST_TOO_LARGE): a
	// proxy bypass list over 4,000 characters.
	ErrProxyBypassListTooLarge HRESULT = 0x80200019
	// ErrInvalidProxyInfo (BG_E_INVALID_PROXY_INFO): a job's proxy list or
	// bypass list does not parse, found when the job uses it. Fatal, in
	// GENERAL_TRANSPORT.
	ErrInvalidProxyInfo HRESULT = 0x8020003F
	// ErrInvalidRange (DO_E_INVALID_RANGE): a byte range is malformed or
	// lies outside the remote file.
	ErrInvalidRange HRESULT = 0x80D05010
	// ErrInsufficientRangeSupport (DO_E_INSUFFICIENT_RANGE_SUPPORT): the
	// server does not serve byte ranges, which a file added with ranges needs.
	ErrInsufficientRangeSupport HRESULT = 0x80D05011
	// ErrOverlappingRanges (DO_E_OVERLAPPING_RANGES): ranges of one file
	// overlap or repeat.
	ErrOverlappingRanges HRESULT = 0x80D05012
	// ErrUnexpectedStatus2xx (DO_E_UNEXPECTED_HTTP_STATUS_2XX): a success
	// status that carries no file (204, for example). Transient, as in DO.
	ErrUnexpectedStatus2xx HRESULT = 0x80D0380D
	// ErrBlockedByCost (DO_E_BLOCKED_BY_COST_TRANSFER_POLICY): the job's
	// cost policy (Job.SetCostPolicy) forbids transferring on the network
	// cost Config.NetworkCost reports. The job waits in TRANSIENT_ERROR
	// until the cost allows it; this is a hold, not a failed attempt.
	ErrBlockedByCost HRESULT = 0x80D03801
	// ErrBlockedByCellular (DO_E_BLOCKED_BY_CELLULAR_POLICY): the job's
	// cost policy is CostPolicyNoCellular and the network is cellular. A
	// hold, as ErrBlockedByCost.
	ErrBlockedByCellular HRESULT = 0x80D03803
	// ErrBlockedByPolicy (BG_E_BLOCKED_BY_POLICY): the bandwidth limits
	// (Config.Bandwidth) allow the job's priority no bandwidth at all
	// (BandwidthBlocked) now. The job waits in TRANSIENT_ERROR until a
	// limit lets it transfer again; a hold, not a failed attempt.
	ErrBlockedByPolicy HRESULT = 0x8020003E
	// ErrStringTooLong (BG_E_STRING_TOO_LONG): a display name over 256 or a
	// description over 1,024 characters.
	ErrStringTooLong HRESULT = 0x80200021
	// ErrValidationFailed (BG_E_VALIDATION_FAILED): a file failed its
	// check — its digest differs from FileSpec.Checksum, the server
	// announced a size other than FileSpec.Size, or the caller rejected it
	// with SetValidationState(i, false). Fatal, in context REMOTE_FILE: the
	// server delivered something other than the file asked for.
	ErrValidationFailed HRESULT = 0x80200053
	// ErrMaxDownloadTimeout (BG_E_MAXDOWNLOAD_TIMEOUT): the job spent its
	// maximum download time (Job.SetMaximumDownloadTime) connecting and
	// transferring. Fatal, in context GENERAL_QUEUE_MANAGER.
	ErrMaxDownloadTimeout HRESULT = 0x80200054
	// ErrMaxDownloadSize (BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED): the job's
	// files would hold more bytes than its maximum download size
	// (Job.SetMaximumDownloadSize). Fatal, in context REMOTE_FILE.
	ErrMaxDownloadSize HRESULT = 0x80200064
	// ErrNotImplemented (E_NOTIMPL): dojob does not implement the request —
	// a state directory on js, wasip1 or plan9, which have no file lock
	// that the kernel releases with the process, or a valid BITS option such
	// as an authentication scheme other than Basic.
	ErrNotImplemented HRESULT = 0x80004001
	// ErrFail (E_FAIL): an error with no better code.
	ErrFail HRESULT = 0x80004005
	// ErrAccessDenied (E_ACCESSDENIED): permission denied on a local file.
	ErrAccessDenied HRESULT = 0x80070005
	// ErrPathNotFound (ERROR_PATH_NOT_FOUND as an HRESULT): a local directory
	// does not exist.
	ErrPathNotFound HRESULT = 0x80070003
	// ErrWriteProtect (ERROR_WRITE_PROTECT as an HRESULT): the destination
	// is on a read-only file system.
	ErrWriteProtect HRESULT = 0x80070013
	// ErrSharingViolation (ERROR_SHARING_VIOLATION as an HRESULT): the state
	// directory is in use by another Manager; on Windows also a local file
	// that another program holds open in a way that forbids the operation.
	ErrSharingViolation HRESULT = 0x80070020
	// ErrPossibleDeadlock (ERROR_POSSIBLE_DEADLOCK as an HRESULT): Job.Wait
	// was called from a callback while a callback of that job was running —
	// its own, or one beside the caller — so it returned the current state
	// at once instead of waiting for that callback.
	ErrPossibleDeadlock HRESULT = 0x8007046B
	// ErrInvalidArg (E_INVALIDARG): an argument is invalid.
	ErrInvalidArg HRESULT = 0x80070057
	// ErrDiskFull (ERROR_DISK_FULL as an HRESULT): no space left on the
	// destination's device.
	ErrDiskFull HRESULT = 0x80070070
	// ErrTimeout (ERROR_WINHTTP_TIMEOUT): a stalled connection — no response
	// headers, or no body bytes, for Config.StallTimeout — or one slower
	// than the job's minimum speed (Job.SetMinimumSpeed), which its message
	// says.
	ErrTimeout HRESULT = 0x80072EE2
	// ErrNameNotResolved (ERROR_WINHTTP_NAME_NOT_RESOLVED): the host name
	// did not resolve.
	ErrNameNotResolved HRESULT = 0x80072EE7
	// ErrCannotConnect (ERROR_WINHTTP_CANNOT_CONNECT): the connection was
	// refused or could not be made.
	ErrCannotConnect HRESULT = 0x80072EFD
	// ErrConnectionError (ERROR_WINHTTP_CONNECTION_ERROR): the connection was
	// reset or closed before the response was complete.
	ErrConnectionError HRESULT = 0x80072EFE
	// ErrRedirectFailed (ERROR_WINHTTP_REDIRECT_FAILED): a redirect was
	// refused — https to http, to a scheme other than http and https, more
	// than 10 of them, or by the CheckRedirect of Config.HTTPClient. Fatal.
	ErrRedirectFailed HRESULT = 0x80072F7C
	// ErrHeaderSizeOverflow (ERROR_WINHTTP_HEADER_SIZE_OVERFLOW): the
	// server's response headers exceeded what the transport reads (256 KiB
	// for dojob's own transport). Fatal, in context REMOTE_FILE: a server
	// that sends that much will send it again; a file with mirrors moves on
	// to the next one.
	ErrHeaderSizeOverflow HRESULT = 0x80072F96
	// ErrUserNameTooLarge (BG_E_USERNAME_TOO_LARGE): a user name over 300
	// characters.
	ErrUserNameTooLarge HRESULT = 0x80200025
	// ErrPasswordTooLarge (BG_E_PASSWORD_TOO_LARGE): a password over 65,535
	// characters.
	ErrPasswordTooLarge HRESULT = 0x80200026
	// ErrInvalidAuthTarget (BG_E_INVALID_AUTH_TARGET): an AuthTarget that is
	// neither server nor proxy.
	ErrInvalidAuthTarget HRESULT = 0x80200027
	// ErrInvalidAuthScheme (BG_E_INVALID_AUTH_SCHEME): an AuthScheme outside
	// BITS's list.
	ErrInvalidAuthScheme HRESULT = 0x80200028
	// ErrInvalidCredentials (BG_E_INVALID_CREDENTIALS): credentials in a form
	// the scheme cannot carry (a Basic user name with ':', a control character).
	ErrInvalidCredentials HRESULT = 0x80200040
)

// httpStatusBase is BG_E_HTTP_ERROR_000: BG_E_HTTP_ERROR_nnn is this plus nnn.
const httpStatusBase HRESULT = 0x80190000

// HTTPStatus returns the BITS code for an HTTP status, BG_E_HTTP_ERROR_nnn =
// 0x80190000 + code; HTTPStatus(404) is 0x80190194. Codes outside 100–999
// give ErrFail.
func HTTPStatus(code int) HRESULT {
	if code < 100 || code > 999 {
		return ErrFail
	}
	return httpStatusBase + HRESULT(code)
}

// HTTPStatus reports the HTTP status code h stands for, if h is a
// BG_E_HTTP_ERROR_nnn code.
func (h HRESULT) HTTPStatus() (code int, ok bool) {
	if h >= httpStatusBase+100 && h <= httpStatusBase+999 {
		return int(h - httpStatusBase), true
	}
	return 0, false
}

var hresultNames = map[HRESULT]string{
	ErrNoService:                   "DO_E_NO_SERVICE",
	ErrNoProgress:                  "DO_E_DOWNLOAD_NO_PROGRESS",
	ErrJobNotFound:                 "DO_E_JOB_NOT_FOUND",
	ErrJobEmpty:                    "DO_E_JOB_EMPTY",
	ErrFileNotAvailable:            "DO_E_FILE_NOT_AVAILABLE",
	ErrInvalidState:                "DO_E_INVALID_STATE",
	ErrErrorInformationUnavailable: "DO_E_ERROR_INFORMATION_UNAVAILABLE",
	ErrBlockSizeMismatch:           "DO_E_HTTP_BLOCKSIZE_MISMATCH",
	ErrCertValidation:              "DO_E_HTTP_CERT_VALIDATION",
	ErrCertExpired:                 "CERT_E_EXPIRED",
	ErrCertUntrustedRoot:           "CERT_E_UNTRUSTEDROOT",
	ErrCertCNNoMatch:               "CERT_E_CN_NO_MATCH",
	ErrCertWrongUsage:              "CERT_E_WRONG_USAGE",
	ErrClientCertNeeded:            "ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED",
	ErrSecureFailure:               "ERROR_WINHTTP_SECURE_FAILURE",
	ErrProxyListTooLarge:           "BG_E_PROXY_LIST_TOO_LARGE",
	ErrProxyBypassListTooLarge:     "BG_E_PROXY_BYPASS_LIST_TOO_LARGE",
	ErrInvalidProxyInfo:            "BG_E_INVALID_PROXY_INFO",
	ErrInvalidRange:                "DO_E_INVALID_RANGE",
	ErrInsufficientRangeSupport:    "DO_E_INSUFFICIENT_RANGE_SUPPORT",
	ErrOverlappingRanges:           "DO_E_OVERLAPPING_RANGES",
	ErrUnexpectedStatus2xx:         "DO_E_UNEXPECTED_HTTP_STATUS_2XX",
	ErrBlockedByCost:               "DO_E_BLOCKED_BY_COST_TRANSFER_POLICY",
	ErrBlockedByCellular:           "DO_E_BLOCKED_BY_CELLULAR_POLICY",
	ErrBlockedByPolicy:             "BG_E_BLOCKED_BY_POLICY",
	ErrStringTooLong:               "BG_E_STRING_TOO_LONG",
	ErrValidationFailed:            "BG_E_VALIDATION_FAILED",
	ErrMaxDownloadTimeout:          "BG_E_MAXDOWNLOAD_TIMEOUT",
	ErrMaxDownloadSize:             "BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED",
	ErrNotImplemented:              "E_NOTIMPL",
	ErrFail:                        "E_FAIL",
	ErrAccessDenied:                "E_ACCESSDENIED",
	ErrPathNotFound:                "ERROR_PATH_NOT_FOUND",
	ErrWriteProtect:                "ERROR_WRITE_PROTECT",
	ErrSharingViolation:            "ERROR_SHARING_VIOLATION",
	ErrPossibleDeadlock:            "ERROR_POSSIBLE_DEADLOCK",
	ErrInvalidArg:                  "E_INVALIDARG",
	ErrDiskFull:                    "ERROR_DISK_FULL",
	ErrTimeout:                     "ERROR_WINHTTP_TIMEOUT",
	ErrNameNotResolved:             "ERROR_WINHTTP_NAME_NOT_RESOLVED",
	ErrCannotConnect:               "ERROR_WINHTTP_CANNOT_CONNECT",
	ErrConnectionError:             "ERROR_WINHTTP_CONNECTION_ERROR",
	ErrRedirectFailed:              "ERROR_WINHTTP_REDIRECT_FAILED",
	ErrHeaderSizeOverflow:          "ERROR_WINHTTP_HEADER_SIZE_OVERFLOW",
	ErrUserNameTooLarge:            "BG_E_USERNAME_TOO_LARGE",
	ErrPasswordTooLarge:            "BG_E_PASSWORD_TOO_LARGE",
	ErrInvalidAuthTarget:           "BG_E_INVALID_AUTH_TARGET",
	ErrInvalidAuthScheme:           "BG_E_INVALID_AUTH_SCHEME",
	ErrInvalidCredentials:          "BG_E_INVALID_CREDENTIALS",
}

// Name returns the symbolic name of the code, such as "DO_E_INVALID_STATE"
// or "BG_E_HTTP_ERROR_404", or "" for a code dojob does not know.
func (h HRESULT) Name() string {
	if n, ok := hresultNames[h]; ok {
		return n
	}
	if code, ok := h.HTTPStatus(); ok {
		return fmt.Sprintf("BG_E_HTTP_ERROR_%d", code)
	}
	return ""
}

// Error names the code and gives its value, e.g.
// "DO_E_INVALID_STATE (0x80D02013)".
func (h HRESULT) Error() string {
	if n := h.Name(); n != "" {
		return fmt.Sprintf("%s (0x%08X)", n, uint32(h))
	}
	return fmt.Sprintf("HRESULT 0x%08X", uint32(h))
}

// ErrorContext says where an error happened, in BG_ERROR_CONTEXT order.
type ErrorContext int

// The error contexts, numbered as BG_ERROR_CONTEXT.
const (
	ErrorContextNone                      ErrorContext = iota // no context (argument, protocol or timeout errors)
	ErrorContextUnknown                                       // context unknown
	ErrorContextGeneralQueueManager                           // the job engine itself
	ErrorContextQueueManagerNotification                      // delivering a notification
	ErrorContextLocalFile                                     // local file I/O
	ErrorContextRemoteFile                                    // an HTTP status from the server
	ErrorContextGeneralTransport                              // network and TLS errors
	ErrorContextRemoteApplication                             // the server application (uploads; unused)
	ErrorContextServerCertificateCallback                     // a certificate callback (unused)
)

var contextNames = [...]string{
	"NONE", "UNKNOWN", "GENERAL_QUEUE_MANAGER", "QUEUE_MANAGER_NOTIFICATION",
	"LOCAL_FILE", "REMOTE_FILE", "GENERAL_TRANSPORT", "REMOTE_APPLICATION",
	"SERVER_CERTIFICATE_CALLBACK",
}

// String returns the context name without its BG_ERROR_CONTEXT_ prefix,
// e.g. "REMOTE_FILE".
func (c ErrorContext) String() string {
	if c >= 0 && int(c) < len(contextNames) {
		return contextNames[c]
	}
	return fmt.Sprintf("ErrorContext(%d)", int(c))
}

// JobError is the error object of a job in ERROR or TRANSIENT_ERROR (the
// IBackgroundCopyError of BITS). errors.Is(e, e.Code) holds, and errors.Is
// and errors.As reach Err as well, so a no-progress timeout (Code
// ErrNoProgress) still matches the transient error it wraps:
//
//	errors.Is(e, dojob.ErrNoProgress)      // true
//	errors.Is(e, dojob.HTTPStatus(503))    // true if 503 was the last transient error
//
// A JobError handed out by dojob is a snapshot: it is never modified after
// it is returned, so it is safe to read from any goroutine. dojob never
// hands out a zero JobError; one made by the caller has Code 0 (S_OK), no
// context, no file and no cause, and its methods work on it.
type JobError struct {
	Context ErrorContext // where it happened
	Code    HRESULT      // the documented code, e.g. 0x80D02002 or 0x80190194
	File    *FileInfo    // the file it concerns; nil when it is not tied to a file
	Err     error        // the underlying cause; may be nil

	transient  bool
	hold       bool          // a hold by policy (hold.go): not a failed attempt
	retryAfter time.Duration // a server's Retry-After; 0 when none
	of         *file         // the stream file it concerns (a stream has no LocalPath to find it by)
}

// aboutLocked ties e to f, a file of the job whose mu the caller holds:
// File becomes f's snapshot.
func (e *JobError) aboutLocked(f *file) {
	fi := f.infoLocked()
	e.File = &fi
	if f.Stream {
		e.of = f
	}
}

// Error describes the error with a "dojob:" prefix. URLs in it never show
// embedded credentials.
func (e *JobError) Error() string {
	var b strings.Builder
	b.WriteString("dojob: ")
	b.WriteString(e.Code.Error())
	if _, d := certDetail(e); d != "" {
		b.WriteString(": ")
		b.WriteString(d)
	}
	if e.Context != ErrorContextNone {
		b.WriteString(" [")
		b.WriteString(e.Context.String())
		b.WriteString("]")
	}
	if e.File != nil {
		// The URL of the source that failed: a mirror's, when the file
		// had moved to one.
		u := e.File.RemoteURL
		if e.File.SourceURL != "" {
			u = e.File.SourceURL
		}
		b.WriteString(": ")
		b.WriteString(redactURL(u))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(redactText(e.Err.Error()))
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *JobError) Unwrap() error { return e.Err }

// Is reports whether target is the HRESULT e.Code, or, for a failed
// certificate check (ErrCertValidation), the code of the check that failed
// (ErrCertUntrustedRoot, ErrCertCNNoMatch, ErrCertExpired,
// ErrCertWrongUsage).
func (e *JobError) Is(target error) bool {
	hr, ok := target.(HRESULT)
	if !ok {
		return false
	}
	if hr == e.Code {
		return true
	}
	c, _ := certDetail(e)
	return c != 0 && c == hr
}

// As sets *target to e.Code when target is a *HRESULT, so errors.As gives
// the job's own code before any code deeper in the chain.
func (e *JobError) As(target any) bool {
	if p, ok := target.(*HRESULT); ok {
		*p = e.Code
		return true
	}
	return false
}

// FileInfo returns the file the error concerns, or an error matching
// ErrFileNotAvailable when the error is not tied to a file (File is nil),
// as IBackgroundCopyError's GetFile does.
func (e *JobError) FileInfo() (FileInfo, error) {
	if e == nil || e.File == nil {
		return FileInfo{}, errorf(ErrFileNotAvailable, "the error is not tied to a file")
	}
	return *e.File, nil
}

// Transient reports whether the error is one the job retries (it put the job
// in TRANSIENT_ERROR) rather than a fatal one.
func (e *JobError) Transient() bool { return e.transient }

// errorf returns an error that wraps code with a message, for the
// method-level errors (argument and state checks).
func errorf(code HRESULT, format string, args ...any) error {
	return &codeError{code: code, msg: fmt.Sprintf(format, args...)}
}

// codeError is a method-level error: a message and the HRESULT it matches.
type codeError struct {
	code HRESULT
	msg  string
}

func (e *codeError) Error() string { return "dojob: " + e.msg + ": " + e.code.Error() }
func (e *codeError) Unwrap() error { return e.code }

// RedactURL returns u with its secrets hidden, for messages and logs: the
// password of its userinfo, and the values of query parameters that carry
// signatures or tokens — presigned URLs of S3 (X-Amz-Signature,
// X-Amz-Credential, X-Amz-Security-Token), Google Cloud Storage
// (X-Goog-Signature, X-Goog-Credential, and Signature, GoogleAccessId),
// CloudFront (Signature, Policy, Key-Pair-Id), Azure SAS (sig), and the
// common token, access_token, key, api_key and secret parameters (names
// matched in any case). A hidden value reads "REDACTED". Parameters that
// only describe a signature (X-Amz-Expires, se, sp, ...) are kept: they
// tell why a URL stopped working. The rest of u is unchanged, parameter
// order included. A string that does not parse as a URL is returned as it is.
func RedactURL(u string) string { return redactURL(u) }

// secretParams are the query parameters whose values RedactURL hides, in
// lower case.
var secretParams = map[string]bool{
	"x-amz-signature": true, "x-amz-credential": true, "x-amz-security-token": true,
	"x-goog-signature": true, "x-goog-credential": true, "googleaccessid": true,
	"signature": true, "policy": true, "key-pair-id": true, "sig": true,
	"token": true, "access_token": true, "id_token": true, "refresh_token": true,
	"key": true, "api_key": true, "apikey": true, "secret": true, "client_secret": true,
	"password": true, "passwd": true,
}

// redactURL is RedactURL.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.User == nil && p.RawQuery == "") {
		return u
	}
	out := u
	if p.User != nil {
		out = p.Redacted() // the query stays as it was (RawQuery)
	}
	if p.RawQuery == "" {
		return out
	}
	parts := strings.Split(p.RawQuery, "&")
	changed := false
	for i, part := range parts {
		name, _, hasValue := strings.Cut(part, "=")
		key, err := url.QueryUnescape(name)
		if err != nil {
			key = name
		}
		if hasValue && secretParams[strings.ToLower(key)] {
			parts[i] = name + "=REDACTED"
			changed = true
		}
	}
	if !changed {
		return out
	}
	q := "?" + p.RawQuery
	i := strings.Index(out, q)
	if i < 0 {
		return out
	}
	return out[:i] + "?" + strings.Join(parts, "&") + out[i+len(q):]
}

// redactText hides the secrets of URLs quoted inside an error message
// (net/http quotes the request URL in *url.Error).
func redactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	// Any white space ends a URL: errors.Join puts a newline between texts.
	fields := strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '"' || r == '\'' })
	for _, f := range fields {
		if strings.Contains(f, "://") && strings.ContainsAny(f, "@?") {
			if r := redactURL(strings.TrimRight(f, ":,;")); r != strings.TrimRight(f, ":,;") {
				s = strings.ReplaceAll(s, strings.TrimRight(f, ":,;"), r)
			}
		}
	}
	return s
}

// redactErr returns err with the URLs in the text of every error of its
// chain redacted (redactText: userinfo, and the values of secretParams),
// for the errors dojob receives from net/http — its *url.Error carries the
// request's URL, a redirect target's included, in full — and from a
// caller's CheckRedirect. An error whose chain shows no secret is returned
// as it is. Otherwise the chain is copied, never modified (net/http may
// share its errors): a *url.Error becomes a copy with its URL redacted, and
// any other error whose text shows a secret a redactedError holding the
// redacted text, whose Unwrap gives the redacted copies of what the
// original wrapped (one error, or several as errors.Join's), so every node
// a caller reaches with errors.Unwrap prints redacted text. errors.Is and
// errors.As work as on the original chain: a redactedError matches what
// its original matched (by identity, or its own Is and As methods), and
// errors.As to the original's concrete type yields the original — which
// the caller asked for by its type.
func redactErr(err error) error {
	if err == nil || !secretInChain(err) {
		return err
	}
	if ue, ok := err.(*url.Error); ok {
		c := *ue
		c.URL = redactURL(ue.URL)
		c.Err = redactErr(ue.Err)
		return &c
	}
	r := &redactedError{msg: redactText(err.Error()), orig: err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return &redactedWrap{r, redactErr(u.Unwrap())}
	case interface{ Unwrap() []error }:
		var next []error
		for _, e := range u.Unwrap() {
			next = append(next, redactErr(e))
		}
		return &redactedJoin{r, next}
	}
	return r
}

// secretInChain reports whether the text of err, or of any error it wraps,
// shows a secret redactText would hide.
func secretInChain(err error) bool {
	for err != nil {
		if s := err.Error(); redactText(s) != s {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if secretInChain(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// redactedError stands for an error whose text showed a secret (redactErr).
type redactedError struct {
	msg  string // the original's text, redacted
	orig error
}

func (e *redactedError) Error() string { return e.msg }

// GoString keeps %#v from printing the original.
func (e *redactedError) GoString() string { return strconv.Quote(e.msg) }

// Is reports whether the original is target, or says it is.
func (e *redactedError) Is(target error) bool {
	if reflect.TypeOf(target).Comparable() && reflect.TypeOf(e.orig) == reflect.TypeOf(target) && e.orig == target {
		return true
	}
	x, ok := e.orig.(interface{ Is(error) bool })
	return ok && x.Is(target)
}

// As sets *target to the original when it is of target's type, or lets
// the original's own As decide.
func (e *redactedError) As(target any) bool {
	v := reflect.ValueOf(target)
	if v.Kind() == reflect.Pointer && !v.IsNil() && reflect.TypeOf(e.orig).AssignableTo(v.Elem().Type()) {
		v.Elem().Set(reflect.ValueOf(e.orig))
		return true
	}
	x, ok := e.orig.(interface{ As(any) bool })
	return ok && x.As(target)
}

// redactedWrap is a redactedError whose original wrapped one error.
type redactedWrap struct {
	*redactedError
	next error // the redacted copy of what the original wrapped
}

func (e *redactedWrap) Unwrap() error { return e.next }

// redactedJoin is a redactedError whose original wrapped several errors
// (errors.Join, fmt.Errorf with several %w).
type redactedJoin struct {
	*redactedError
	next []error // the redacted copies of what the original wrapped
}

func (e *redactedJoin) Unwrap() []error { return e.next }

// Causes of a stopped transfer, given to context.CancelCauseFunc so the
// transfer knows why it stopped.
var (
	errStalled = errors.New("no response headers or body bytes within the stall timeout")
	errStopped = errors.New("transfer stopped")
	// errTooSlow is wrapped by the cause of an attempt the watchdog
	// stopped for being slower than the job's minimum speed (speed.go).
	errTooSlow   = errors.New("transfer slower than the minimum speed")
	errInsecure  = errors.New("redirect from https to http refused")
	errRedirects = errors.New("stopped after 10 redirects")
	errScheme    = errors.New("redirect to a scheme other than http or https refused")
	// errCallerRedirect wraps the error of a caller's own CheckRedirect.
	errCallerRedirect = errors.New("redirect refused by the client's CheckRedirect")
)

// classify turns the error of an HTTP attempt into a JobError: its code,
// context and whether it is transient. Network errors (refused, reset, name
// not resolved, timeouts), stalls and attempts slower than the minimum
// speed are transient, in GENERAL_TRANSPORT;
// TLS certificate errors and refused redirects are fatal there. Response
// headers over the transport's cap are a fatal ErrHeaderSizeOverflow in
// REMOTE_FILE (what the server sent, like a protocol error). A JobError
// made earlier (a status, protocol or local error) is returned as it is.
func classify(err error) *JobError {
	var je *JobError
	if errors.As(err, &je) {
		return je
	}
	if te := classifyTLS(err); te != nil {
		return te // names the failed check (netopts.go)
	}
	e := &JobError{Err: err, Context: ErrorContextGeneralTransport, transient: true}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, errStalled), errors.Is(err, errTooSlow):
		e.Code = ErrTimeout
	case errors.Is(err, errInsecure), errors.Is(err, errRedirects), errors.Is(err, errScheme), errors.Is(err, errCallerRedirect):
		e.Code, e.transient = ErrRedirectFailed, false
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalidCert):
		e.Code, e.transient = ErrCertValidation, false
	case isHeaderOverflow(err):
		e.Code, e.Context, e.transient = ErrHeaderSizeOverflow, ErrorContextRemoteFile, false
	case errors.As(err, &dnsErr):
		e.Code = ErrNameNotResolved
	case isConnRefused(err):
		e.Code = ErrCannotConnect
	case errors.As(err, &opErr) && opErr.Op == "dial":
		e.Code = ErrCannotConnect
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		e.Code = ErrTimeout
	default:
		// Resets, EOF before the announced length, broken pipes and every
		// other network failure.
		e.Code = ErrConnectionError
	}
	return e
}

// isHeaderOverflow reports whether err is net/http's refusal of response
// headers over the Transport's MaxResponseHeaderBytes. net/http exports no
// error value for it, so its messages are matched: HTTP/1's, and HTTP/2's
// (a header list over the limit the client advertised).
func isHeaderOverflow(err error) bool {
	s := err.Error()
	return strings.Contains(s, "net/http: server response headers exceeded") ||
		strings.Contains(s, "response header list larger than advertised limit")
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// statusError is the JobError for an HTTP status the transfer cannot use.
// Transient: 408, 425, 429 and 5xx except 501 and 505 (the server may
// answer differently later); everything else is fatal.
func statusError(code int, retryAfter time.Duration) *JobError {
	e := &JobError{
		Context:    ErrorContextRemoteFile,
		Code:       HTTPStatus(code),
		Err:        fmt.Errorf("server answered %d %s", code, http.StatusText(code)),
		retryAfter: retryAfter,
	}
	switch {
	case code == 408, code == 425, code == 429:
		e.transient = true
	case code >= 500 && code <= 599 && code != 501 && code != 505:
		e.transient = true
	}
	return e
}

// localError is the JobError for a failed local file operation. Local
// errors are fatal: retrying does not free disk space or grant permission.
func localError(err error) *JobError {
	e := &JobError{Context: ErrorContextLocalFile, Err: err}
	switch {
	case isDiskFull(err):
		e.Code = ErrDiskFull
	case errors.Is(err, fs.ErrPermission) || isDirectory(err):
		// A directory in the way of a file is access denied, as Windows
		// reports it (a rename over it, an open of it for writing).
		e.Code = ErrAccessDenied
	case isReadOnlyFS(err):
		e.Code = ErrWriteProtect
	case isSharingViolation(err):
		e.Code = ErrSharingViolation
	case errors.Is(err, fs.ErrNotExist):
		e.Code = ErrPathNotFound
	default:
		e.Code = ErrFail
	}
	return e
}

// protocolError is a fatal error about what the server sent.
func protocolError(code HRESULT, format string, args ...any) *JobError {
	return &JobError{Context: ErrorContextRemoteFile, Code: code, Err: fmt.Errorf(format, args...)}
}
