package inventory_test

import (
	"testing"

	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/inventory/inventorytest"
)

// TestSharedOverMemory: replicas merging into a Memory sink in any order
// make the entries one Memory makes.
func TestSharedOverMemory(t *testing.T) {
	uses := inventorytest.Uses(5000, 1)
	want := inventorytest.Reference(t, uses)
	sink, _ := inventory.NewMemory(inventory.Options{})
	inventorytest.Replicas(t, sink, 3, 97, uses)
	got, _ := inventory.Collect(t.Context(), sink)
	inventorytest.Equal(t, want, got)
}
