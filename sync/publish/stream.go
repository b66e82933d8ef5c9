package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// EnsureStream creates the stream that cfg describes, or updates an existing one to match it. It
// never deletes a stream or its events. Subjects that the existing stream captures beyond the
// configured ones are kept. A storage type change is an ErrStreamConflict because JetStream cannot
// change it in place. Lowering max_age or max_bytes is an ErrStreamConflict unless
// AllowRetentionShrink is set, because the server would drop the events past the new limit at once.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, log *zap.Logger) (jetstream.Stream, error) {
	if log == nil {
		log = zap.NewNop()
	}
	want := streamConfig(cfg)

	stream, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another tisync process created it in the meantime: update it like an existing one.
			stream, err = js.Stream(ctx, cfg.Name)
		} else if err == nil {
			log.Info("stream created", zap.String("stream", cfg.Name), zap.Strings("subjects", want.Subjects),
				zap.Duration("max_age", want.MaxAge), zap.Int64("max_bytes", want.MaxBytes), zap.Duration("duplicate_window", want.Duplicates))
			return stream, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}

	have := stream.CachedInfo().Config
	update, err := mergeStreamConfig(have, want, cfg.AllowRetentionShrink)
	if err != nil {
		return nil, err
	}
	if streamConfigEqual(have, update) {
		log.Debug("stream up to date", zap.String("stream", cfg.Name))
		return stream, nil
	}
	stream, err = js.UpdateStream(ctx, update)
	if err != nil {
		return nil, fmt.Errorf("update stream %s: %w", cfg.Name, err)
	}
	log.Info("stream updated", zap.String("stream", cfg.Name), zap.Strings("subjects", update.Subjects),
		zap.Duration("max_age", update.MaxAge), zap.Int64("max_bytes", update.MaxBytes), zap.Duration("duplicate_window", update.Duplicates))
	return stream, nil
}

func streamConfig(cfg StreamConfig) jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if cfg.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "TestInvite change events published by tisync",
		Subjects:    slices.Clone(cfg.Subjects),
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     storage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  cfg.DuplicateWindow,
	}
}

// mergeStreamConfig returns the existing configuration changed to the wanted settings, keeping
// everything that an update would otherwise lose.
func mergeStreamConfig(have, want jetstream.StreamConfig, allowShrink bool) (jetstream.StreamConfig, error) {
	if have.Storage != want.Storage {
		return have, fmt.Errorf("%w: stream %s uses %s storage and stream.storage asks for %s; JetStream cannot change it in place: move the events to a new stream name, or set stream.storage to %s",
			ErrStreamConflict, have.Name, have.Storage, want.Storage, have.Storage)
	}
	if have.Retention != jetstream.LimitsPolicy {
		return have, fmt.Errorf("%w: stream %s has retention policy %s; tisync needs limits retention so that every subscriber sees every event: use another stream.name",
			ErrStreamConflict, have.Name, have.Retention)
	}
	if !allowShrink {
		if shrinks(have.MaxAge.Nanoseconds(), want.MaxAge.Nanoseconds()) {
			return have, fmt.Errorf("%w: lowering max_age of stream %s from %s to %s deletes older events at once; set stream.allow_retention_shrink to true to do it",
				ErrStreamConflict, have.Name, have.MaxAge, want.MaxAge)
		}
		if shrinks(have.MaxBytes, want.MaxBytes) {
			return have, fmt.Errorf("%w: lowering max_bytes of stream %s from %d to %d deletes older events at once; set stream.allow_retention_shrink to true to do it",
				ErrStreamConflict, have.Name, have.MaxBytes, want.MaxBytes)
		}
	}

	update := have
	update.Subjects = slices.Clone(have.Subjects)
	for _, s := range want.Subjects {
		if !slices.Contains(update.Subjects, s) {
			update.Subjects = append(update.Subjects, s)
		}
	}
	update.MaxAge = want.MaxAge
	update.MaxBytes = want.MaxBytes
	update.Duplicates = want.Duplicates
	update.Replicas = want.Replicas
	update.Discard = want.Discard
	if update.Description == "" {
		update.Description = want.Description
	}
	return update, nil
}

// shrinks reports whether a limit goes from have to a stricter want; 0 and -1 mean no limit.
func shrinks(have, want int64) bool {
	unlimited := func(v int64) bool { return v <= 0 }
	if unlimited(want) {
		return false
	}
	return unlimited(have) || want < have
}

func streamConfigEqual(a, b jetstream.StreamConfig) bool {
	return slices.Equal(a.Subjects, b.Subjects) && a.MaxAge == b.MaxAge && a.MaxBytes == b.MaxBytes &&
		a.Duplicates == b.Duplicates && a.Replicas == b.Replicas && a.Discard == b.Discard && a.Description == b.Description
}
