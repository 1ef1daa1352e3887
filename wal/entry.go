package wal

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

// Request kinds: what a normal entry asks etcd to do. They name the
// InternalRaftRequest field set, in the order etcd's apply dispatches them
// (server/etcdserver/apply/uber_applier.go), and are part of the JSON schema.
const (
	KindNoop                 = "noop" // empty normal entry: a new leader's no-op
	KindPut                  = "put"
	KindDeleteRange          = "delete-range"
	KindTxn                  = "txn"
	KindRange                = "range"
	KindCompaction           = "compaction"
	KindLeaseGrant           = "lease-grant"
	KindLeaseRevoke          = "lease-revoke"
	KindLeaseCheckpoint      = "lease-checkpoint"
	KindAlarm                = "alarm"
	KindAuth                 = "auth" // any auth* request; Text says which
	KindClusterVersionSet    = "cluster-version-set"
	KindMemberAttrSet        = "member-attr-set"
	KindDowngradeInfoSet     = "downgrade-info-set"
	KindDowngradeVersionTest = "downgrade-version-test"
	KindV2                   = "v2"          // etcd <= 3.5 v2 store request
	KindConfChange           = "conf-change" // raftpb.ConfChange or ConfChangeV2
	KindUnknown              = "unknown"     // decodes, but sets no field this etcd knows
	KindUndecodable          = "undecodable" // data is not the message the entry type says
)

// EntryInfo is the human and JSON description of one raft entry.
type EntryInfo struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Type is raft's entry type: "normal", "conf-change" or "conf-change-v2".
	Type string `json:"type"`
	Kind string `json:"kind"`
	// Text is a one-line summary: keys quoted and cut at 64 bytes.
	Text string `json:"text"`
	// Request is the decoded message in protojson form (bytes in base64):
	// the InternalRaftRequest, ConfChange or ConfChangeV2, or a V2Request.
	Request json.RawMessage `json:"request,omitempty"`
	Size    int             `json:"size"` // bytes of entry data
	Segment string          `json:"segment,omitempty"`
	Offset  int64           `json:"offset,omitempty"`
	Flag    Flag            `json:"flag,omitempty"`
}

// DecodedEntry is a normal entry's data decoded: exactly one of the fields
// is set, unless the data is empty (a no-op) or undecodable (Err).
type DecodedEntry struct {
	Request    *pb.InternalRaftRequest
	V2         *V2Request
	ConfChange *raftpb.ConfChange
	ConfV2     *raftpb.ConfChangeV2
	Kind       string
	Err        error
}

// Decode decodes an entry's data the way etcd's apply loop would.
func Decode(e *raftpb.Entry) DecodedEntry {
	data := e.GetData()
	switch e.GetType() {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(data, &cc); err != nil {
			return DecodedEntry{Kind: KindUndecodable, Err: err}
		}
		return DecodedEntry{ConfChange: &cc, Kind: KindConfChange}
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(data, &cc); err != nil {
			return DecodedEntry{Kind: KindUndecodable, Err: err}
		}
		return DecodedEntry{ConfV2: &cc, Kind: KindConfChange}
	case raftpb.EntryNormal:
	default:
		return DecodedEntry{Kind: KindUndecodable, Err: fmt.Errorf("unknown entry type %d", e.GetType())}
	}
	if len(data) == 0 {
		return DecodedEntry{Kind: KindNoop}
	}
	// The v2 forms first: protobuf-go would otherwise read a bare v2
	// Request's Path (field 3) as a RangeRequest.
	if v2 := decodeV2(data); v2 != nil {
		return DecodedEntry{V2: v2, Kind: KindV2}
	}
	var r pb.InternalRaftRequest
	if err := proto.Unmarshal(data, &r); err != nil {
		return DecodedEntry{Kind: KindUndecodable, Err: err}
	}
	return DecodedEntry{Request: &r, Kind: RequestKind(&r)}
}

// RequestKind names what r asks for, in etcd's dispatch order.
func RequestKind(r *pb.InternalRaftRequest) string {
	switch {
	case r.ClusterVersionSet != nil:
		return KindClusterVersionSet
	case r.ClusterMemberAttrSet != nil:
		return KindMemberAttrSet
	case r.DowngradeInfoSet != nil:
		return KindDowngradeInfoSet
	case r.DowngradeVersionTest != nil:
		return KindDowngradeVersionTest
	case r.Range != nil:
		return KindRange
	case r.Put != nil:
		return KindPut
	case r.DeleteRange != nil:
		return KindDeleteRange
	case r.Txn != nil:
		return KindTxn
	case r.Compaction != nil:
		return KindCompaction
	case r.LeaseGrant != nil:
		return KindLeaseGrant
	case r.LeaseRevoke != nil:
		return KindLeaseRevoke
	case r.LeaseCheckpoint != nil:
		return KindLeaseCheckpoint
	case r.Alarm != nil:
		return KindAlarm
	case authOp(r) != "":
		return KindAuth
	}
	return KindUnknown
}

// authOp names the auth request in r, or "".
func authOp(r *pb.InternalRaftRequest) string {
	switch {
	case r.Authenticate != nil:
		return "authenticate " + r.Authenticate.Name
	case r.AuthEnable != nil:
		return "auth enable"
	case r.AuthDisable != nil:
		return "auth disable"
	case r.AuthStatus != nil:
		return "auth status"
	case r.AuthUserAdd != nil:
		return "user add " + r.AuthUserAdd.Name
	case r.AuthUserDelete != nil:
		return "user delete " + r.AuthUserDelete.Name
	case r.AuthUserChangePassword != nil:
		return "user change-password " + r.AuthUserChangePassword.Name
	case r.AuthUserGrantRole != nil:
		return "user grant-role " + r.AuthUserGrantRole.User + " " + r.AuthUserGrantRole.Role
	case r.AuthUserGet != nil:
		return "user get " + r.AuthUserGet.Name
	case r.AuthUserRevokeRole != nil:
		return "user revoke-role " + r.AuthUserRevokeRole.Name + " " + r.AuthUserRevokeRole.Role
	case r.AuthUserList != nil:
		return "user list"
	case r.AuthRoleAdd != nil:
		return "role add " + r.AuthRoleAdd.Name
	case r.AuthRoleDelete != nil:
		return "role delete " + r.AuthRoleDelete.Role
	case r.AuthRoleGet != nil:
		return "role get " + r.AuthRoleGet.Role
	case r.AuthRoleGrantPermission != nil:
		return "role grant-permission " + r.AuthRoleGrantPermission.Name
	case r.AuthRoleRevokePermission != nil:
		return "role revoke-permission " + r.AuthRoleRevokePermission.Role
	case r.AuthRoleList != nil:
		return "role list"
	}
	return ""
}

// Describe decodes e and summarises it.
func Describe(e *raftpb.Entry) EntryInfo {
	info := EntryInfo{Index: e.GetIndex(), Term: e.GetTerm(), Type: entryType(e.GetType()), Size: len(e.GetData())}
	d := Decode(e)
	info.Kind = d.Kind
	var msg proto.Message
	switch {
	case d.Err != nil:
		info.Text = "undecodable: " + d.Err.Error()
	case d.Kind == KindNoop:
		info.Text = "no-op (new leader)"
	case d.V2 != nil:
		info.Text = fmt.Sprintf("v2 %s %s", d.V2.Method, d.V2.Path)
		if d.V2.Val != "" {
			info.Text += " " + quote([]byte(d.V2.Val))
		}
		if b, err := json.Marshal(d.V2); err == nil {
			info.Request = b
		}
	case d.ConfChange != nil:
		info.Text = describeConfChange(d.ConfChange)
		msg = d.ConfChange
	case d.ConfV2 != nil:
		var parts []string
		for _, c := range d.ConfV2.GetChanges() {
			parts = append(parts, fmt.Sprintf("%s %x", confChangeName(c.GetType()), c.GetNodeId()))
		}
		info.Text = fmt.Sprintf("conf change v2 %s [%s]", d.ConfV2.GetTransition(), strings.Join(parts, ", "))
		msg = d.ConfV2
	default:
		info.Text = describeRequest(d.Request)
		msg = d.Request
	}
	if msg != nil {
		if b, err := protojson.Marshal(msg); err == nil {
			info.Request = json.RawMessage(b)
		}
	}
	return info
}

func entryType(t raftpb.EntryType) string {
	switch t {
	case raftpb.EntryNormal:
		return "normal"
	case raftpb.EntryConfChange:
		return "conf-change"
	case raftpb.EntryConfChangeV2:
		return "conf-change-v2"
	}
	return fmt.Sprintf("unknown<%d>", int32(t))
}

func confChangeName(t raftpb.ConfChangeType) string {
	switch t {
	case raftpb.ConfChangeAddNode:
		return "add-node"
	case raftpb.ConfChangeRemoveNode:
		return "remove-node"
	case raftpb.ConfChangeUpdateNode:
		return "update-node"
	case raftpb.ConfChangeAddLearnerNode:
		return "add-learner"
	}
	return fmt.Sprintf("unknown<%d>", int32(t))
}

// ConfMember is the part of etcd's ConfigChangeContext (a membership.Member
// in JSON) that names a member.
type ConfMember struct {
	ID        uint64   `json:"id"`
	Name      string   `json:"name"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner"`
	IsPromote bool     `json:"isPromote"`
}

func describeConfChange(cc *raftpb.ConfChange) string {
	s := fmt.Sprintf("conf change %s %x", confChangeName(cc.GetType()), cc.GetNodeId())
	var m ConfMember
	if len(cc.GetContext()) > 0 && json.Unmarshal(cc.GetContext(), &m) == nil {
		if m.IsPromote {
			s += " (promote)"
		}
		if m.Name != "" {
			s += " name=" + m.Name
		}
		if len(m.PeerURLs) > 0 {
			s += " peers=" + strings.Join(m.PeerURLs, ",")
		}
	}
	return s
}

func describeRequest(r *pb.InternalRaftRequest) string {
	switch RequestKind(r) {
	case KindPut:
		return describePut(r.Put)
	case KindDeleteRange:
		return describeDelete(r.DeleteRange)
	case KindRange:
		return "range " + keyRange(r.Range.Key, r.Range.RangeEnd)
	case KindTxn:
		return describeTxn(r.Txn)
	case KindCompaction:
		s := fmt.Sprintf("compact revision %d", r.Compaction.Revision)
		if r.Compaction.Physical {
			s += " (physical)"
		}
		return s
	case KindLeaseGrant:
		return fmt.Sprintf("lease grant %016x ttl %ds", r.LeaseGrant.ID, r.LeaseGrant.TTL)
	case KindLeaseRevoke:
		return fmt.Sprintf("lease revoke %016x", r.LeaseRevoke.ID)
	case KindLeaseCheckpoint:
		var parts []string
		for _, c := range r.LeaseCheckpoint.Checkpoints {
			parts = append(parts, fmt.Sprintf("%016x=%ds", c.ID, c.Remaining_TTL))
		}
		return "lease checkpoint " + strings.Join(parts, " ")
	case KindAlarm:
		return fmt.Sprintf("alarm %s %s member %x", r.Alarm.Action, r.Alarm.Alarm, r.Alarm.MemberID)
	case KindAuth:
		return authOp(r)
	case KindClusterVersionSet:
		return "cluster version " + r.ClusterVersionSet.Ver
	case KindMemberAttrSet:
		a := r.ClusterMemberAttrSet.GetMemberAttributes()
		return fmt.Sprintf("member %x attributes name=%s clients=%s", r.ClusterMemberAttrSet.Member_ID, a.GetName(), strings.Join(a.GetClientUrls(), ","))
	case KindDowngradeInfoSet:
		return fmt.Sprintf("downgrade enabled=%v target=%s", r.DowngradeInfoSet.Enabled, r.DowngradeInfoSet.Ver)
	case KindDowngradeVersionTest:
		return "downgrade version test " + r.DowngradeVersionTest.Ver
	}
	return "request with no field this etcd version knows"
}

func describePut(p *pb.PutRequest) string {
	s := fmt.Sprintf("put %s (%d bytes)", quote(p.Key), len(p.Value))
	if p.IgnoreValue {
		s = fmt.Sprintf("put %s (keep value)", quote(p.Key))
	}
	if p.Lease != 0 {
		s += fmt.Sprintf(" lease %016x", p.Lease)
	}
	if p.IgnoreLease {
		s += " (keep lease)"
	}
	return s
}

func describeDelete(d *pb.DeleteRangeRequest) string {
	return "delete " + keyRange(d.Key, d.RangeEnd)
}

func describeTxn(t *pb.TxnRequest) string {
	var cmp []string
	for _, c := range t.Compare {
		cmp = append(cmp, fmt.Sprintf("%s(%s) %s", strings.ToLower(c.Target.String()), quote(c.Key), compareOp(c.Result)))
	}
	return fmt.Sprintf("txn if [%s] then [%s] else [%s]", strings.Join(cmp, ", "), describeOps(t.Success), describeOps(t.Failure))
}

func compareOp(r pb.Compare_CompareResult) string {
	switch r {
	case pb.Compare_EQUAL:
		return "="
	case pb.Compare_GREATER:
		return ">"
	case pb.Compare_LESS:
		return "<"
	case pb.Compare_NOT_EQUAL:
		return "!="
	}
	return r.String()
}

func describeOps(ops []*pb.RequestOp) string {
	var out []string
	for _, op := range ops {
		switch {
		case op.GetRequestPut() != nil:
			out = append(out, describePut(op.GetRequestPut()))
		case op.GetRequestDeleteRange() != nil:
			out = append(out, describeDelete(op.GetRequestDeleteRange()))
		case op.GetRequestRange() != nil:
			out = append(out, "range "+keyRange(op.GetRequestRange().Key, op.GetRequestRange().RangeEnd))
		case op.GetRequestTxn() != nil:
			out = append(out, describeTxn(op.GetRequestTxn()))
		}
	}
	return strings.Join(out, "; ")
}

// keyRange renders etcd's [key, rangeEnd) conventions.
func keyRange(key, end []byte) string {
	switch {
	case len(end) == 0:
		return quote(key)
	case len(end) == 1 && end[0] == 0:
		return quote(key) + ".." + "(end)"
	}
	return quote(key) + ".." + quote(end)
}

// quote renders a key or value, cut at 64 bytes so a description stays one
// short line whatever the entry holds.
func quote(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return fmt.Sprintf("%q...(%d bytes)", b[:limit], len(b))
	}
	return fmt.Sprintf("%q", b)
}
