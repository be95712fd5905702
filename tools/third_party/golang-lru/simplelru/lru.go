// Package simplelru is the project's stand-in for the part of
// github.com/hashicorp/golang-lru/v2/simplelru that the OpenTelemetry Collector's exporterhelper
// uses (tools/third_party/README.md): a size-bounded map that evicts its least recently used
// entry. Not safe for concurrent use, as the original.
package simplelru

import (
	"container/list"
	"errors"
)

// EvictCallback is called with each entry the cache drops.
type EvictCallback[K comparable, V any] func(key K, value V)

type entry[K comparable, V any] struct {
	key   K
	value V
}

// LRU is the cache; the front of order is the most recently used entry.
type LRU[K comparable, V any] struct {
	size    int
	order   *list.List
	items   map[K]*list.Element
	onEvict EvictCallback[K, V]
}

// NewLRU makes a cache of at most size entries.
func NewLRU[K comparable, V any](size int, onEvict EvictCallback[K, V]) (*LRU[K, V], error) {
	if size <= 0 {
		return nil, errors.New("must provide a positive size")
	}
	return &LRU[K, V]{size: size, order: list.New(), items: map[K]*list.Element{}, onEvict: onEvict}, nil
}

// Add sets key's value and makes it the most recent; it says whether an entry was evicted.
func (c *LRU[K, V]) Add(key K, value V) bool {
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		e.Value.(*entry[K, V]).value = value
		return false
	}
	c.items[key] = c.order.PushFront(&entry[K, V]{key, value})
	if c.order.Len() > c.size {
		c.removeElement(c.order.Back())
		return true
	}
	return false
}

// Get returns key's value and makes it the most recent.
func (c *LRU[K, V]) Get(key K) (V, bool) {
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*entry[K, V]).value, true
	}
	var zero V
	return zero, false
}

// Peek returns key's value without touching its recency.
func (c *LRU[K, V]) Peek(key K) (V, bool) {
	if e, ok := c.items[key]; ok {
		return e.Value.(*entry[K, V]).value, true
	}
	var zero V
	return zero, false
}

// Contains says whether key is there, without touching its recency.
func (c *LRU[K, V]) Contains(key K) bool {
	_, ok := c.items[key]
	return ok
}

// Remove drops key (the eviction callback sees it); it says whether key was there.
func (c *LRU[K, V]) Remove(key K) bool {
	if e, ok := c.items[key]; ok {
		c.removeElement(e)
		return true
	}
	return false
}

// Keys lists the keys from the least to the most recently used.
func (c *LRU[K, V]) Keys() []K {
	keys := make([]K, 0, len(c.items))
	for e := c.order.Back(); e != nil; e = e.Prev() {
		keys = append(keys, e.Value.(*entry[K, V]).key)
	}
	return keys
}

// Len is the number of entries.
func (c *LRU[K, V]) Len() int { return c.order.Len() }

// Purge drops every entry (the eviction callback sees each).
func (c *LRU[K, V]) Purge() {
	for c.order.Len() > 0 {
		c.removeElement(c.order.Back())
	}
}

func (c *LRU[K, V]) removeElement(e *list.Element) {
	c.order.Remove(e)
	en := e.Value.(*entry[K, V])
	delete(c.items, en.key)
	if c.onEvict != nil {
		c.onEvict(en.key, en.value)
	}
}
