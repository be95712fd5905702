// SPDX-License-Identifier: Apache-2.0

// Package schema is the project's stand-in for the request and response types of
// github.com/hashicorp/vault-client-go/schema that versitygw v1.8.0's Vault IAM backends name
// or read (tools/versitygw/README.md). Only the fields versitygw sets or reads are here.
package schema

// AppRoleLoginRequest is an AppRole login's credentials.
type AppRoleLoginRequest struct {
	RoleId   string
	SecretId string
}

// KvV2WriteRequest is one secret version to write to a KV v2 engine, with its options
// (versitygw passes "cas").
type KvV2WriteRequest struct {
	Data    map[string]any
	Options map[string]any
}

// KvV2WriteMetadataRequest is a KV v2 secret's metadata to set.
type KvV2WriteMetadataRequest struct {
	DeleteVersionAfter string
}

// KvV2ReadResponse is one secret version read from a KV v2 engine and its metadata.
type KvV2ReadResponse struct {
	Data     map[string]any
	Metadata map[string]any
}

// KvV2ListResponse is the keys under a KV v2 path.
type KvV2ListResponse struct {
	Keys []string
}
