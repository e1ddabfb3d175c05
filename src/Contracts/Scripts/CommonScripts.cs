namespace VixAspire.Contracts.Scripts;

/// <summary>
/// Lua helpers that scripts of several families share. Each is a string of <c>local function</c> definitions to
/// prepend to a script; a script that needs two prepends both, the one it depends on first.
/// </summary>
public static class CommonScripts
{
    /// <summary>Defines <c>vix_now()</c>: Redis's clock in Unix milliseconds, the one clock every lease and grace is judged by.</summary>
    public const string Now = """
        local function vix_now()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end

        """;

    /// <summary>
    /// Defines <c>vix_last_event(tokens)</c>: the event name of a token stream's last entry, <c>false</c> when the
    /// stream is gone (or empty), and <c>''</c> when the last entry names no event.
    /// </summary>
    public const string LastEvent = $$"""
        local function vix_last_event(tokens)
          local last = redis.call('XREVRANGE', tokens, '+', '-', 'COUNT', 1)
          if #last == 0 then return false end
          local fields = last[1][2]
          for i = 1, #fields, 2 do
            if fields[i] == '{{StreamFields.Event}}' then return fields[i + 1] end
          end
          return ''
        end

        """;
}
