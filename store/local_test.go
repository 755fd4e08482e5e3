package store_test

import (
	"path/filepath"
	"testing"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/storetest"
)

func TestLocalMemoryConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{Open: func(t *testing.T, env storetest.Env) store.Store {
		e, err := engine.New(env.Engine)
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.NewLocal(e, store.LocalOptions{Now: env.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

func TestLocalDurableConformance(t *testing.T) {
	root := t.TempDir()
	storetest.Run(t, storetest.Factory{Persistent: true, Open: func(t *testing.T, env storetest.Env) store.Store {
		dir := filepath.Join(root, filepath.FromSlash(env.Name))
		o := env.Engine
		o.Dir = dir
		e, err := engine.New(o)
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.NewLocal(e, store.LocalOptions{Dir: dir, Now: env.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}
