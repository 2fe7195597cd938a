package flight

import "testing"

func TestPlanCacheKeepsTheMostRecent(t *testing.T) {
	c := newPlanCache(2)
	a, b, d := &query{}, &query{}, &query{}
	c.put(planKey{sql: "a"}, a)
	c.put(planKey{sql: "b"}, b)
	if c.get(planKey{sql: "a"}) != a { // a is now the most recent
		t.Fatal("a missing")
	}
	if c.get(planKey{sql: "a", prepared: true}) != nil {
		t.Fatal("a prepared statement shares a statement's plan")
	}
	c.put(planKey{sql: "d"}, d) // evicts b, the least recent
	if c.get(planKey{sql: "b"}) != nil || c.get(planKey{sql: "a"}) != a || c.get(planKey{sql: "d"}) != d {
		t.Fatal("wrong entry evicted")
	}
	off := newPlanCache(0)
	off.put(planKey{sql: "a"}, a)
	if off.get(planKey{sql: "a"}) != nil {
		t.Fatal("a cache of size 0 kept a plan")
	}
}
