// SPDX-License-Identifier: Apache-2.0

// Package vault is the project's stand-in for the part of github.com/hashicorp/vault-client-go
// that versitygw v1.8.0's HashiCorp Vault IAM backends (auth/iam_vault.go,
// iamapi/storage/vault.go) use (tools/versitygw/README.md). The real client is under the
// MPL-2.0 and pulls in more MPL-2.0 modules; the tests never use the Vault backend, so this
// stand-in only has the same names and types, and every call fails with ErrNotBuiltIn: a
// versitygw started with --iam-vault-* options stops at once with that error.
package vault

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/vault-client-go/schema"
)

// ErrNotBuiltIn is the error of every call.
var ErrNotBuiltIn = errors.New("vault: the HashiCorp Vault IAM backend is not built into this test build of versitygw")

// Client has the two groups of calls versitygw makes; New never returns one.
type Client struct {
	Auth    Auth
	Secrets Secrets
}

// Auth holds the login calls.
type Auth struct{}

// Secrets holds the KV v2 secrets engine calls.
type Secrets struct{}

// Response is a call's answer: its data and, for logins, the token.
type Response[T any] struct {
	Data T
	Auth *ResponseAuth
}

// ResponseAuth is a login's result.
type ResponseAuth struct {
	ClientToken string
}

// CertificateEntry is one PEM certificate or key, given inline.
type CertificateEntry struct {
	FromBytes []byte
}

// TLSConfiguration is the TLS setup of the connection to Vault.
type TLSConfiguration struct {
	ServerCertificate    CertificateEntry
	ClientCertificate    CertificateEntry
	ClientCertificateKey CertificateEntry
}

type clientConfig struct {
	address string
	timeout time.Duration
	tls     TLSConfiguration
}

type requestConfig struct {
	mountPath string
	namespace string
}

// ClientOption sets up the client New would make.
type ClientOption func(*clientConfig) error

// RequestOption modifies one request.
type RequestOption func(*requestConfig) error

// WithAddress sets Vault's address.
func WithAddress(address string) ClientOption {
	return func(c *clientConfig) error { c.address = address; return nil }
}

// WithRequestTimeout sets each request's timeout.
func WithRequestTimeout(timeout time.Duration) ClientOption {
	return func(c *clientConfig) error { c.timeout = timeout; return nil }
}

// WithTLS sets the TLS configuration.
func WithTLS(tls TLSConfiguration) ClientOption {
	return func(c *clientConfig) error { c.tls = tls; return nil }
}

// WithMountPath sets the mount path of the auth method or secrets engine a request goes to.
func WithMountPath(path string) RequestOption {
	return func(r *requestConfig) error { r.mountPath = path; return nil }
}

// WithNamespace sets the Vault namespace of a request.
func WithNamespace(namespace string) RequestOption {
	return func(r *requestConfig) error { r.namespace = namespace; return nil }
}

// New applies the options and fails with ErrNotBuiltIn.
func New(options ...ClientOption) (*Client, error) {
	var c clientConfig
	for _, o := range options {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	return nil, ErrNotBuiltIn
}

// SetToken fails with ErrNotBuiltIn.
func (c *Client) SetToken(token string) error { return ErrNotBuiltIn }

// IsErrorStatus reports whether err is an HTTP error answer of Vault with that status; no
// request is ever made here, so it never is.
func IsErrorStatus(err error, status int) bool { return false }

// AppRoleLogin fails with ErrNotBuiltIn.
func (a *Auth) AppRoleLogin(ctx context.Context, request schema.AppRoleLoginRequest, options ...RequestOption) (*Response[map[string]any], error) {
	return nil, ErrNotBuiltIn
}

// KvV2Write fails with ErrNotBuiltIn.
func (s *Secrets) KvV2Write(ctx context.Context, path string, request schema.KvV2WriteRequest, options ...RequestOption) (*Response[map[string]any], error) {
	return nil, ErrNotBuiltIn
}

// KvV2WriteMetadata fails with ErrNotBuiltIn.
func (s *Secrets) KvV2WriteMetadata(ctx context.Context, path string, request schema.KvV2WriteMetadataRequest, options ...RequestOption) (*Response[map[string]any], error) {
	return nil, ErrNotBuiltIn
}

// KvV2Read fails with ErrNotBuiltIn.
func (s *Secrets) KvV2Read(ctx context.Context, path string, options ...RequestOption) (*Response[schema.KvV2ReadResponse], error) {
	return nil, ErrNotBuiltIn
}

// KvV2List fails with ErrNotBuiltIn.
func (s *Secrets) KvV2List(ctx context.Context, path string, options ...RequestOption) (*Response[schema.KvV2ListResponse], error) {
	return nil, ErrNotBuiltIn
}

// KvV2DeleteMetadataAndAllVersions fails with ErrNotBuiltIn.
func (s *Secrets) KvV2DeleteMetadataAndAllVersions(ctx context.Context, path string, options ...RequestOption) (*Response[map[string]any], error) {
	return nil, ErrNotBuiltIn
}
