package runtimestore

import "sync"

// callPool recycles the calls of the stop path, each with its done
// channel: two calls per stop were four allocations per job. A call goes
// back only once the batcher has signalled it and its caller has read its
// reply (strings of a reply are allocations of their own, never the
// call's memory); a call whose caller stopped waiting may still be sent,
// so it is left to the collector.
type callPool struct {
	calls, logged sync.Pool
}

func (p *callPool) call() *call {
	if c, ok := p.calls.Get().(*call); ok {
		return c
	}
	return &call{}
}

func (p *callPool) putCall(c *call) {
	*c = call{done: c.done}
	p.calls.Put(c)
}

func (p *callPool) loggedCall() *loggedCall {
	if lc, ok := p.logged.Get().(*loggedCall); ok {
		return lc
	}
	return &loggedCall{}
}

func (p *callPool) putLogged(lc *loggedCall) {
	*lc = loggedCall{call: call{done: lc.done}}
	p.logged.Put(lc)
}
