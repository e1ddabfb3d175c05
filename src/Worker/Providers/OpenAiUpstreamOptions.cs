using System.ComponentModel.DataAnnotations;

namespace VixAspire.Worker.Providers;

/// <summary>
/// One OpenAI-compatible upstream (vLLM, Ollama's <c>/v1</c>, llama.cpp's server, OpenAI), bound from
/// <c>Providers:OpenAI:&lt;name&gt;</c>; the name is the provider name routes use.
/// </summary>
public sealed class OpenAiUpstreamOptions : IValidatableObject
{
    public const string SectionName = "Providers:OpenAI";

    /// <summary>The API base, ending where <c>/chat/completions</c> begins, e.g. <c>http://localhost:11434/v1</c>.</summary>
    [Required]
    public Uri? Endpoint { get; set; }

    /// <summary>Sent as a bearer token; servers that need none accept any placeholder, which is used when empty.</summary>
    public string? ApiKey { get; set; }

    /// <summary>The upstream model used when a route names no <c>UpstreamModel</c>.</summary>
    [Required]
    public string Model { get; set; } = "";

    /// <summary>How long one attempt may wait for the upstream's first streamed chunk (headers included).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Generations one worker streams from this upstream at once; more wait in the worker, oldest first. About the
    /// sequences the server batches well (vLLM's <c>--max-num-seqs</c> over the workers sharing it).
    /// </summary>
    [Range(1, 100_000)]
    public int MaxConcurrency { get; set; } = 64;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Endpoint is { } endpoint && (!endpoint.IsAbsoluteUri || endpoint.Scheme is not ("http" or "https")))
        {
            yield return new ValidationResult("Endpoint must be an absolute http or https URL.", [nameof(Endpoint)]);
        }
    }
}
