package none_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/stopruntime"
)

func TestStopSucceeds(t *testing.T) {
	var d stopruntime.Driver = none.Driver{}
	require.NoError(t, d.Stop(context.Background(), "", time.Second))
	require.NoError(t, d.Stop(context.Background(), "anything", 0))
}
