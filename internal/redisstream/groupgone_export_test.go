package redisstream

// CreateGroupScript lets the external tests create a group exactly as a
// broker does (groupgone.go), at a moment of their choosing.
var CreateGroupScript = createGroupScript
