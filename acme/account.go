package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	legoacme "github.com/go-acme/lego/v5/acme"
)

// account is the CA account of one (CA, email) pair. It implements lego's
// registration.User.
type account struct {
	email string
	key   crypto.Signer
	reg   *legoacme.ExtendedAccount // nil until registered
}

func (a *account) GetEmail() string                           { return a.email }
func (a *account) GetRegistration() *legoacme.ExtendedAccount { return a.reg }
func (a *account) GetPrivateKey() crypto.Signer               { return a.key }

// accountFile is the stored form of an account.
type accountFile struct {
	Email string `json:"email"`
	URL   string `json:"url"`
	Key   string `json:"key"` // PKCS #8, PEM
}

// loadAccount returns the stored account of email, or a new unregistered
// one with a fresh P-256 key when none is stored.
func (s storage) loadAccount(email string) (*account, error) {
	path := s.accountPath(email)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return &account{email: email, key: key}, nil
	}
	if err != nil {
		return nil, err
	}
	a, err := decodeAccount(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: remove the file to register a new account", path, err)
	}
	return a, nil
}

func decodeAccount(data []byte) (*account, error) {
	var f accountFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	block, _ := pem.Decode([]byte(f.Key))
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(crypto.Signer)
	if !ok || f.URL == "" {
		return nil, errors.New("no usable key or account URL")
	}
	return &account{email: f.Email, key: key, reg: &legoacme.ExtendedAccount{Location: f.URL}}, nil
}

// saveAccount stores a registered account.
func (s storage) saveAccount(a *account) error {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return err
	}
	f := accountFile{
		Email: a.email,
		URL:   a.reg.Location,
		Key:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.accountPath(a.email), append(data, '\n'))
}
