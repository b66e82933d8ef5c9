package checkpoint

import (
	"fmt"
	"strings"

	"github.com/tisync/tisync/schema"
)

// Key names one checkpoint: the snapshot of one entity of one task of one organization.
type Key struct {
	OrganizationID string `json:"organization_id"`
	// TaskID is empty only for the organization's task list (Entity task).
	TaskID string        `json:"task_id"`
	Entity schema.Entity `json:"entity"`
}

// noTask stands for an empty TaskID in key-value keys; ids never contain an underscore.
const noTask = "_"

// Validate returns an error wrapping ErrInvalidKey unless the ids pass schema.ValidID and the
// entity is valid. TaskID may be empty for Entity task.
func (k Key) Validate() error {
	switch {
	case !schema.ValidID(k.OrganizationID):
		return fmt.Errorf("organization id %q: %w", k.OrganizationID, ErrInvalidKey)
	case !k.Entity.Valid():
		return fmt.Errorf("entity %q: expected task, ticket or test_session: %w", k.Entity, ErrInvalidKey)
	case k.TaskID == "" && k.Entity != schema.EntityTask, k.TaskID != "" && !schema.ValidID(k.TaskID):
		return fmt.Errorf("task id %q: %w", k.TaskID, ErrInvalidKey)
	}
	return nil
}

// TaskList names the organization's task list where a task id is expected: in Key.String, in
// `tisync checkpoint` commands and in logs. An underscore never occurs in a TestInvite id.
const TaskList = "_tasks"

// task returns the task id, or TaskList for the organization's task list.
func (k Key) task() string {
	if k.TaskID == "" {
		return TaskList
	}
	return k.TaskID
}

// String returns organization/task/entity, with TaskList for the organization's task list.
func (k Key) String() string {
	return k.OrganizationID + "/" + k.task() + "/" + string(k.Entity)
}

// ResetCommand returns the tisync command line that resets the checkpoint.
func (k Key) ResetCommand() string {
	if k.TaskID == "" {
		return "tisync checkpoint reset " + TaskList
	}
	return "tisync checkpoint reset " + k.TaskID + " --entity " + string(k.Entity)
}

// kvKey returns the key of the checkpoint's metadata in the key-value bucket.
func (k Key) kvKey() string {
	task := k.TaskID
	if task == "" {
		task = noTask
	}
	return k.OrganizationID + "." + task + "." + string(k.Entity)
}

// parseKVKey is the inverse of kvKey.
func parseKVKey(s string) (Key, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Key{}, fmt.Errorf("metadata key %q: %w", s, ErrInvalidKey)
	}
	k := Key{OrganizationID: parts[0], TaskID: parts[1], Entity: schema.Entity(parts[2])}
	if k.TaskID == noTask {
		k.TaskID = ""
	}
	return k, k.Validate()
}

// objectPrefix returns the prefix of the names of the checkpoint's snapshot objects.
func (k Key) objectPrefix() string {
	task := k.TaskID
	if task == "" {
		task = noTask
	}
	return k.OrganizationID + "/" + task + "/" + string(k.Entity) + "/"
}
