package dojob

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// NetworkCost describes the cost of the network the Manager transfers over,
// as Config.NetworkCost reports it: the BITS_COST_STATE bits, with their
// values, plus CostCellular. A cost normally has one of the first seven
// bits, with CostRoaming and CostCellular added when they apply. The zero
// NetworkCost means the cost is unknown, which every policy allows.
type NetworkCost uint32

// The bits of a NetworkCost.
const (
	CostUnrestricted       NetworkCost = 0x01  // no cost, no limit (BITS_COST_STATE_UNRESTRICTED)
	CostCappedUsageUnknown NetworkCost = 0x02  // a data cap, usage unknown
	CostBelowCap           NetworkCost = 0x04  // a data cap, well below it
	CostNearCap            NetworkCost = 0x08  // a data cap, close to it
	CostOvercapCharged     NetworkCost = 0x10  // over the cap, charged for more
	CostOvercapThrottled   NetworkCost = 0x20  // over the cap, slowed down
	CostUsageBased         NetworkCost = 0x40  // paid by usage, no cap (metered)
	CostRoaming            NetworkCost = 0x80  // roaming (BITS_COST_STATE_ROAMING)
	CostCellular           NetworkCost = 0x100 // a cellular network (dojob's own bit; DO's DisallowOnCellular)
)

// CostPolicy says on which network costs a job may transfer: Delivery
// Optimization's DODownloadCostPolicy, with its values. The costs each
// allows follow BITS_JOB_TRANSFER_POLICY:
//
//	policy                        allowed NetworkCost bits
//	CostPolicyAlways (0)          all
//	CostPolicyUnrestrictedOnly(1) Unrestricted, OvercapThrottled
//	CostPolicyStandard (2)        all but NearCap, OvercapCharged, Roaming
//	CostPolicyNoRoaming (3)       all but Roaming
//	CostPolicyNoSurcharge (4)     all but OvercapCharged, Roaming
//	CostPolicyNoCellular (5)      all, but not CostCellular
//
// A cost is allowed when every one of its bits (CostCellular aside) is;
// CostCellular matters to CostPolicyNoCellular alone. Bits above
// CostCellular are ignored by every policy.
type CostPolicy int

// The cost policies, numbered as DODownloadCostPolicy.
const (
	CostPolicyAlways           CostPolicy = 0
	CostPolicyUnrestrictedOnly CostPolicy = 1
	CostPolicyStandard         CostPolicy = 2
	CostPolicyNoRoaming        CostPolicy = 3
	CostPolicyNoSurcharge      CostPolicy = 4
	CostPolicyNoCellular       CostPolicy = 5
)

// costMasks[p] is the BITS_JOB_TRANSFER_POLICY of p without its high bit:
// the cost-state bits it allows.
var costMasks = [...]NetworkCost{
	CostPolicyAlways:           0xff,
	CostPolicyUnrestrictedOnly: 0x21,
	CostPolicyStandard:         0x67,
	CostPolicyNoRoaming:        0x7f,
	CostPolicyNoSurcharge:      0x6f,
	CostPolicyNoCellular:       0xff,
}

var costPolicyNames = [...]string{"ALWAYS", "UNRESTRICTED_ONLY", "STANDARD", "NO_ROAMING", "NO_SURCHARGE", "NO_CELLULAR"}

func (p CostPolicy) valid() bool { return p >= CostPolicyAlways && p <= CostPolicyNoCellular }

// String returns the policy's name, e.g. "STANDARD".
func (p CostPolicy) String() string {
	if p.valid() {
		return costPolicyNames[p]
	}
	return fmt.Sprintf("CostPolicy(%d)", int(p))
}

// Allows reports whether p lets a job transfer at cost c (an unknown cost,
// 0, always).
func (p CostPolicy) Allows(c NetworkCost) bool { return p.blocks(c) == 0 }

// costKnown is every bit of a NetworkCost dojob knows.
const costKnown = 0x1ff

// blocks returns the code a job of policy p is held with at cost c, or 0.
// Bits of c above those dojob knows (costKnown) are ignored: a cost of
// only such bits is unknown, allowed as the zero cost is, so a provider
// that passes on a flag a newer system added does not hold every job.
func (p CostPolicy) blocks(c NetworkCost) HRESULT {
	c &= costKnown
	if !p.valid() || c == 0 {
		return 0
	}
	if p == CostPolicyNoCellular && c&CostCellular != 0 {
		return ErrBlockedByCellular
	}
	if c&^CostCellular&^costMasks[p] != 0 {
		return ErrBlockedByCost
	}
	return 0
}

// defaultCostPolicy is the policy of a job that has none set: Delivery
// Optimization's defaults, Always for FOREGROUND, Standard for the others.
func defaultCostPolicy(p Priority) CostPolicy {
	if p == PriorityForeground {
		return CostPolicyAlways
	}
	return CostPolicyStandard
}

// SetCostPolicy sets on which network costs the job may transfer
// (CostPolicy). While Config.NetworkCost reports a cost the policy
// forbids, the job waits in TRANSIENT_ERROR with ErrBlockedByCost (or
// ErrBlockedByCellular for CostPolicyNoCellular on a cellular network) — a
// running transfer is stopped, its bytes kept — and it is queued again on
// its own once the cost allows it (Manager.NetworkCostChanged), resuming
// where it stopped. A policy outside the six returns ErrInvalidArg; a job
// in a final state ErrInvalidState. The value is persisted. Until it is set
// the policy follows the priority, as in Delivery Optimization: Always for
// FOREGROUND, Standard for the others. Without Config.NetworkCost the cost
// is unknown and every policy transfers.
func (j *Job) SetCostPolicy(p CostPolicy) error {
	if !p.valid() {
		return errorf(ErrInvalidArg, "unknown cost policy %d", int(p))
	}
	changed := false
	err := j.update(func() (bool, error) {
		if j.costSet && j.cost == p {
			return false, nil
		}
		j.cost, j.costSet, changed = p, true, true
		return true, nil
	})
	if err == nil && changed { // the same policy again changes nothing, notifies no one
		j.mu.Lock()
		j.applyPolicyLocked()
		j.mu.Unlock()
	}
	return err
}

// CostPolicy returns the job's cost policy: the one set, or the default
// for its priority.
func (j *Job) CostPolicy() CostPolicy {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.costPolicyLocked()
}

func (j *Job) costPolicyLocked() CostPolicy {
	if j.costSet {
		return j.cost
	}
	return defaultCostPolicy(j.prio)
}

// NetworkCostChanged tells the Manager that the network's cost may have
// changed: it asks Config.NetworkCost again, on the caller's goroutine, and
// applies the answer to every job at once — running transfers that their
// policy now forbids are stopped and held, held jobs that it now allows are
// queued. Without Config.NetworkCost it does nothing. dojob cannot tell on
// its own, on every system, whether a network is metered: the application
// that knows (a Windows application through
// Windows.Networking.Connectivity, a phone's connectivity API) reports it
// and calls this when the system says the cost changed.
func (m *Manager) NetworkCostChanged() {
	if m.cfg.NetworkCost == nil || m.closed.Load() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.askCost(ctx)
	m.applyPolicy()
}

// NetworkCost returns the network cost last reported by Config.NetworkCost
// (0: unknown).
func (m *Manager) NetworkCost() NetworkCost { return NetworkCost(m.cost.Load()) }

// netCost is the Manager's network cost: the answer of the latest query of
// Config.NetworkCost to return. Queries overlap (a worker's before an
// attempt, NetworkCostChanged's); each takes a number when it starts, and
// an answer is stored only if no query that started later has stored one
// already, so a slow answer from before a change never overwrites the cost
// that NetworkCostChanged found after it.
type netCost struct {
	v atomic.Uint32 // the cost; read without a lock

	mu     sync.Mutex // a leaf, taken with no other lock held
	next   uint64     // the number of the last query started
	stored uint64     // the number of the query whose answer is in v
}

// Load returns the cost stored.
func (c *netCost) Load() uint32 { return c.v.Load() }

// start numbers a query that starts now.
func (c *netCost) start() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	return c.next
}

// store records the answer of query seq, unless a later query's answer
// is stored already.
func (c *netCost) store(seq uint64, v NetworkCost) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq < c.stored {
		return
	}
	c.stored = seq
	c.v.Store(uint32(v))
}

// askCost asks Config.NetworkCost for the cost now and records it (unless
// a query started after this one answered first); an error records an
// unknown cost — but not when the error is ctx's own end (a worker's
// attempt stalled or stopped while it asked), which says nothing about the
// network.
func (m *Manager) askCost(ctx context.Context) {
	f := m.cfg.NetworkCost
	if f == nil {
		return
	}
	seq := m.cost.start()
	c, err := f(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c = 0
	}
	m.cost.store(seq, c)
}
