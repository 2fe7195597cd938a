package sql

import (
	"testing"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
)

// marketplaceGraph builds, with the features API, the part of the tutorial's
// marketplace the SQL surface needs: keys, a derived key, has-one and
// has-many relations and windows.
func marketplaceGraph(t testing.TB) *features.Graph {
	t.Helper()
	g := features.NewGraph()
	newClass := func(name string) *features.Class {
		c := &features.Class{Name: name}
		if err := g.AddClass(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	add := func(c *features.Class, f *features.Feature) *features.Feature {
		if err := c.AddFeature(f); err != nil {
			t.Fatal(err)
		}
		if f.Primary {
			c.Primary = f
		}
		return f
	}
	scalar := func(k features.TypeKind) features.Type { return features.Type{Kind: k} }
	windows := func(c *features.Class, name string, k features.TypeKind, labels ...string) {
		group := add(c, &features.Feature{Name: name, Kind: features.WindowedGroup, Type: scalar(k)})
		for _, l := range labels {
			d, err := features.ParseDuration(l)
			if err != nil {
				t.Fatal(err)
			}
			w := add(c, &features.Feature{Name: features.WindowFQN(name, d), Type: scalar(k), Window: &features.Window{Label: l, Duration: d, Group: group}})
			group.Windows = append(group.Windows, w)
		}
	}
	user, item, review, userItem := newClass("User"), newClass("Item"), newClass("Review"), newClass("UserItem")

	uid := add(user, &features.Feature{Name: "id", Type: scalar(features.String), Primary: true})
	add(user, &features.Feature{Name: "created_at", Type: scalar(features.Datetime)})
	add(user, &features.Feature{Name: "first_name", Type: scalar(features.String)})
	add(user, &features.Feature{Name: "last_name", Type: scalar(features.String)})
	add(user, &features.Feature{Name: "email", Type: features.Type{Kind: features.String, Nullable: true}})
	add(user, &features.Feature{Name: "full_name", Type: scalar(features.String)})
	windows(user, "review_count", features.Int, "7d", "30d", "60d")

	iid := add(item, &features.Feature{Name: "id", Type: scalar(features.String), Primary: true})
	add(item, &features.Feature{Name: "title", Type: scalar(features.String)})
	add(item, &features.Feature{Name: "price", Type: scalar(features.Float)})

	add(review, &features.Feature{Name: "id", Type: scalar(features.Int), Primary: true})
	add(review, &features.Feature{Name: "created_at", Type: scalar(features.Datetime), EventTime: true})
	add(review, &features.Feature{Name: "star_rating", Type: scalar(features.Int)})
	ruid := add(review, &features.Feature{Name: "user_id", Type: scalar(features.String), References: uid})
	riid := add(review, &features.Feature{Name: "item_id", Type: scalar(features.String), References: iid})
	add(review, &features.Feature{Name: "user", Kind: features.HasOne, Type: features.Type{Kind: features.Struct, Class: user},
		Relation: &features.Relation{From: review, To: user, FromKey: ruid, ToKey: uid}})
	add(review, &features.Feature{Name: "item", Kind: features.HasOne, Type: features.Type{Kind: features.Struct, Class: item},
		Relation: &features.Relation{From: review, To: item, FromKey: riid, ToKey: iid}})
	add(user, &features.Feature{Name: "reviews", Kind: features.HasMany, Type: features.Type{Kind: features.List, Elem: &features.Type{Kind: features.Struct, Class: review}},
		Relation: &features.Relation{From: user, To: review, FromKey: uid, ToKey: ruid, Many: true}})

	key := &expr.Binary{Op: "+", L: &expr.Binary{Op: "+", L: &expr.Ref{Path: []string{"user_id"}}, R: &expr.Literal{Value: "-"}}, R: &expr.Ref{Path: []string{"item_id"}}}
	add(userItem, &features.Feature{Name: "id", Type: scalar(features.String), Primary: true, Expr: key})
	uiu := add(userItem, &features.Feature{Name: "user_id", Type: scalar(features.String), References: uid})
	add(userItem, &features.Feature{Name: "item_id", Type: scalar(features.String), References: iid})
	add(userItem, &features.Feature{Name: "user", Kind: features.HasOne, Type: features.Type{Kind: features.Struct, Class: user},
		Relation: &features.Relation{From: userItem, To: user, FromKey: uiu, ToKey: uid}})
	add(userItem, &features.Feature{Name: "price_diff", Type: features.Type{Kind: features.Float, Nullable: true}})
	return g
}
