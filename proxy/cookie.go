package proxy

// stickyCookie is the Set-Cookie value that pins a client to a backend.
func stickyCookie(name, key string) string {
	return name + "=" + key + "; Path=/; HttpOnly; SameSite=Lax"
}
