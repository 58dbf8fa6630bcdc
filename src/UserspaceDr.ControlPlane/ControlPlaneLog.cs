using Microsoft.Extensions.Logging;

namespace UserspaceDr.ControlPlane;

/// <summary>Every message the control plane (configuration, checkers) logs; event ids from 100, apart from the data plane's.</summary>
public static partial class ControlPlaneLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "config: {Warning}")]
    public static partial void ConfigWarning(ILogger logger, string warning);
}
