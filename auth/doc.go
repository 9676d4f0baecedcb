// Package auth authenticates MQTT clients against a password file of
// argon2id hashes.
package auth
