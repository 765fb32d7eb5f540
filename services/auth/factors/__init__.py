"""Second factors: TOTP with recovery codes, passkeys (WebAuthn), and signing in with them.

`level` says how a session was entered (`amr`, `acr`, `auth_time`); `crypto` seals TOTP secrets;
`challenges` holds the short-lived sign-in challenges in Redis; `signin` is the seam every first
factor goes through; `totp`, `recovery`, `passkeys` are the factors; `stepup` the recent
authentication the sensitive actions need.
"""
