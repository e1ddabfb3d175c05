using System.Text;
using System.Text.Json;
using VixAspire.Contracts;
using VixAspire.StreamApi.Inference;
using VixAspire.StreamApi.Streaming;
using VixAspire.TestSupport;
using FrontEnd = VixAspire.StreamApi.Inference.InferenceRequestReader.FrontEnd;

namespace VixAspire.StreamApi.Tests;

/// <summary>
/// The one body every front end takes, read and validated as the HTTP routes do: each field of OpenAI's chat request
/// lands in the queued <see cref="InferenceRequest"/>, is honoured, or is refused with a 400 naming it.
/// </summary>
public class ChatRequestValidationTests
{
    private readonly InferenceRequestReader _reader = new(
        new FixedOptionsMonitor<StreamingOptions>(new StreamingOptions()),
        new FixedOptionsMonitor<ModelCatalogOptions>(new ModelCatalogOptions()));

    /// <summary>Deserializes as the HTTP routes do (a failure becomes the same fault), then validates.</summary>
    private InferenceRequestReader.ReadResult Read(string json, FrontEnd frontEnd = FrontEnd.OpenAi)
    {
        InferenceRequestBody? body;
        try
        {
            body = JsonSerializer.Deserialize(json, InferenceJsonContext.Default.InferenceRequestBody);
        }
        catch (JsonException ex)
        {
            return new InferenceRequestReader.ReadResult(null, BodyJson.Fault(ex));
        }

        return _reader.Validate(body!, frontEnd);
    }

    private static string WithMessages(string fields) =>
        """{"model":"synthetic","messages":[{"role":"user","content":"hi"}]""" + (fields.Length > 0 ? "," + fields : "") + "}";

    private static string ToolWithParameters(string parameters) =>
        """ "tools":[{"type":"function","function":{"name":"f","parameters":""" + parameters + "}}]";

    private const string ToolConversation = """
        [
          {"role":"system","content":"be brief","name":"rules"},
          {"role":"developer","content":[{"type":"text","text":"use tools"}]},
          {"role":"user","name":"ann","content":[
            {"type":"text","text":"weather in Paris?"},
            {"type":"image_url","image_url":{"url":"https://example.com/sky.png","detail":"low"}},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
          {"role":"assistant","content":null,"reasoning_content":"look it up","tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
            {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"call_1","content":"sunny"},
          {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"noon"}]}
        ]
        """;

    /// <summary>Every carried field of OpenAI's request, with values none of them takes by default.</summary>
    public static readonly string EveryField = """
        {
          "model":"synthetic-fail",
          "messages":MESSAGES,
          "max_completion_tokens":7,
          "temperature":0.25,
          "top_p":0.5,
          "frequency_penalty":-1.5,
          "presence_penalty":1.25,
          "seed":9007199254740993,
          "stop":["END","\n\n"],
          "tools":[
            {"type":"function","function":{"name":"get_weather","description":"Weather of a city","strict":true,
              "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}},
            {"type":"function","function":{"name":"get_time"}}],
          "tool_choice":{"type":"function","function":{"name":"get_weather"}},
          "parallel_tool_calls":false,
          "response_format":{"type":"json_schema","json_schema":{"name":"answer","description":"The answer","strict":true,
            "schema":{"type":"object","properties":{"text":{"type":"string"}}}}},
          "reasoning_effort":"low",
          "user":"user-42",
          "metadata":{"team":"blue","run":"7"},
          "n":1,
          "logprobs":false,
          "store":false,
          "modalities":["text"],
          "stream":true,
          "stream_options":{"include_usage":true,"include_obfuscation":false}
        }
        """.Replace("MESSAGES", ToolConversation, StringComparison.Ordinal);

    [Fact]
    public void EveryCarriedFieldLandsInTheQueuedRequest()
    {
        var result = Read(EveryField);

        Assert.Null(result.Fault);
        var request = Assert.IsType<InferenceRequest>(result.Request);
        Assert.Equal("synthetic-fail", request.Model);
        Assert.Equal(7, request.MaxTokens);
        Assert.Equal(0.25f, request.Temperature);
        Assert.Equal(0.5f, request.TopP);
        Assert.Equal(-1.5f, request.FrequencyPenalty);
        Assert.Equal(1.25f, request.PresencePenalty);
        Assert.Equal(9007199254740993L, request.Seed);
        Assert.Equal(["END", "\n\n"], request.Stop);
        Assert.Equal(["get_weather", "get_time"], request.Tools!.Select(t => t.Name));
        var weather = request.Tools![0];
        Assert.Equal("Weather of a city", weather.Description);
        Assert.True(weather.Strict);
        Assert.Equal("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}""",
            weather.Parameters!.Value.GetRawText());
        Assert.Null(request.Tools[1].Parameters);
        Assert.Equal(new ToolChoice(ToolChoice.Named, "get_weather"), request.ToolChoice);
        Assert.False(request.ParallelToolCalls);
        Assert.Equal(ResponseFormat.JsonSchemaType, request.ResponseFormat!.Type);
        Assert.Equal("answer", request.ResponseFormat.Name);
        Assert.Equal("The answer", request.ResponseFormat.Description);
        Assert.True(request.ResponseFormat.Strict);
        Assert.Equal("""{"type":"object","properties":{"text":{"type":"string"}}}""", request.ResponseFormat.Schema!.Value.GetRawText());
        Assert.Equal("low", request.ReasoningEffort);
        Assert.Equal("user-42", request.User);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "blue", ["run"] = "7" }, request.Metadata);
    }

    [Fact]
    public void EveryMessageKindIsCarriedWithItsIdsNamesAndParts()
    {
        var request = Assert.IsType<InferenceRequest>(Read(EveryField).Request);
        var m = request.Messages;

        Assert.Equal(["system", "developer", "user", "assistant", "tool", "tool"], m.Select(t => t.Role));
        Assert.Equal(("be brief", "rules"), (m[0].Content, m[0].Name));
        Assert.Equal([new ContentPart("text", "use tools")], m[1].Parts!);
        Assert.Null(m[1].Content);
        Assert.Equal("ann", m[2].Name);
        Assert.Equal(
            [
                new ContentPart("text", "weather in Paris?"),
                new ContentPart("image_url", ImageUrl: "https://example.com/sky.png", Detail: "low"),
                new ContentPart("image_url", ImageUrl: "data:image/png;base64,iVBORw0KGgo="),
            ],
            m[2].Parts!);
        Assert.Null(m[3].Content);
        Assert.Equal("look it up", m[3].ReasoningContent);
        Assert.Equal([new ToolCall("call_1", "get_weather", """{"city":"Paris"}"""), new ToolCall("call_2", "get_time", "{}")], m[3].ToolCalls!);
        Assert.Equal(("call_1", "sunny"), (m[4].ToolCallId, m[4].Content));
        Assert.Equal("call_2", m[5].ToolCallId);
        Assert.Equal([new ContentPart("text", "noon")], m[5].Parts!);
    }

    [Fact]
    public void TheQueuedFormReadsBackFieldForField()
    {
        var request = Assert.IsType<InferenceRequest>(Read(EveryField).Request);

        var json = request.ToUtf8Json();
        var back = InferenceRequest.FromUtf8Json(json)!;

        Assert.Equal(Encoding.UTF8.GetString(json), Encoding.UTF8.GetString(back.ToUtf8Json()));
        using var queued = JsonDocument.Parse(json);
        foreach (var field in new[]
        {
            "model", "messages", "max_tokens", "temperature", "top_p", "frequency_penalty", "presence_penalty", "seed", "stop",
            "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "user", "metadata",
        })
        {
            Assert.True(queued.RootElement.TryGetProperty(field, out _), field);
        }
    }

    [Fact]
    public void InferStreamAndTheSocketTakeTheSameBody()
    {
        var openAi = Assert.IsType<InferenceRequest>(Read(EveryField, FrontEnd.OpenAi).Request);
        var inference = Assert.IsType<InferenceRequest>(Read(EveryField, FrontEnd.Inference).Request);

        Assert.Equal(Encoding.UTF8.GetString(openAi.ToUtf8Json()), Encoding.UTF8.GetString(inference.ToUtf8Json()));
    }

    [Theory]
    [InlineData("\"none\"", "none")]
    [InlineData("\"auto\"", "auto")]
    [InlineData("\"required\"", "required")]
    public void ToolChoiceModesAreCarried(string choice, string mode)
    {
        var request = Assert.IsType<InferenceRequest>(Read(WithMessages(
            """ "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":""" + choice)).Request);

        Assert.Equal(new ToolChoice(mode), request.ToolChoice);
    }

    [Theory]
    [InlineData("""{"type":"text"}""", "text")]
    [InlineData("""{"type":"json_object"}""", "json_object")]
    public void SimpleResponseFormatsAreCarried(string format, string type)
    {
        var request = Assert.IsType<InferenceRequest>(Read(WithMessages($"\"response_format\":{format}")).Request);

        Assert.Equal(new ResponseFormat(type), request.ResponseFormat);
    }

    [Fact]
    public void MaxTokensIsTheLegacySpellingOfMaxCompletionTokens()
    {
        Assert.Equal(9, Read(WithMessages("\"max_tokens\":9")).Request!.MaxTokens);
        Assert.Equal(9, Read(WithMessages("\"max_tokens\":9,\"max_completion_tokens\":9")).Request!.MaxTokens);
    }

    [Fact]
    public void NullMeansAbsentForEveryOptionalField()
    {
        var request = Assert.IsType<InferenceRequest>(Read(WithMessages("""
            "temperature":null,"top_p":null,"seed":null,"stop":null,"tools":null,"tool_choice":null,"response_format":null,
            "reasoning_effort":null,"user":null,"metadata":null,"n":null,"logprobs":null,"top_logprobs":null,"logit_bias":null,
            "modalities":null,"audio":null,"prediction":null,"service_tier":null,"store":null,"web_search_options":null,
            "functions":null,"function_call":null,"prompt_cache_key":null,"safety_identifier":null,"verbosity":null,"stream_options":null
            """)).Request);

        Assert.Equal("""{"model":"synthetic","messages":[{"role":"user","content":"hi"}],"max_tokens":128}""", Encoding.UTF8.GetString(request.ToUtf8Json()));
    }

    public static TheoryData<string, string> Refusals => new()
    {
        // Ranges, as OpenAI's reference gives them.
        { "\"temperature\":2.5", "temperature" },
        { "\"top_p\":1.5", "top_p" },
        { "\"top_p\":-0.1", "top_p" },
        { "\"frequency_penalty\":-2.5", "frequency_penalty" },
        { "\"presence_penalty\":2.5", "presence_penalty" },
        { "\"max_completion_tokens\":0", "max_completion_tokens" },
        { "\"max_tokens\":5,\"max_completion_tokens\":6", "max_tokens" },
        { "\"reasoning_effort\":\"extreme\"", "reasoning_effort" },
        { "\"seed\":1.5", "seed" },
        { "\"temperature\":\"hot\"", "temperature" },
        // Metadata: OpenAI's 16 pairs, 64-character keys, 512-character values.
        { "\"metadata\":{" + string.Join(",", Enumerable.Range(0, 17).Select(i => $"\"k{i}\":\"v\"")) + "}", "metadata" },
        { "\"metadata\":{\"" + new string('k', 65) + "\":\"v\"}", "metadata" },
        { "\"metadata\":{\"k\":\"" + new string('v', 513) + "\"}", "metadata" },
        { "\"metadata\":{\"k\":1}", "metadata.k" },
        // Tools.
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"has space\"}}]", "tools[0].function.name" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"" + new string('a', 65) + "\"}}]", "tools[0].function.name" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{}}]", "tools[0].function.name" },
        { "\"tools\":[{\"type\":\"function\"}]", "tools[0].function" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", "tools[1].function.name" },
        { "\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"f\"}}]", "tools[0].type" },
        { "\"tools\":[{\"function\":{\"name\":\"f\"}}]", "tools[0].type" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[1]}}]", "tools[0].function.parameters" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":\"object\"}}]", "tools[0].function.parameters" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"params\":{}}}]", "tools[0].function.params" },
        { "\"tools\":[" + string.Join(",", Enumerable.Repeat("{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", 129)) + "]", "tools" },
        // tool_choice.
        { "\"tool_choice\":\"required\"", "tool_choice" },
        { "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "tool_choice" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}", "tool_choice.function.name" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"sometimes\"", "tool_choice" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"allowed_tools\",\"allowed_tools\":{}}", "tool_choice.allowed_tools" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"custom\"}", "tool_choice.type" },
        { "\"parallel_tool_calls\":true", "parallel_tool_calls" },
        // response_format.
        { "\"response_format\":{\"type\":\"xml\"}", "response_format.type" },
        { "\"response_format\":{\"type\":\"json_schema\"}", "response_format.json_schema" },
        { "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{}}}", "response_format.json_schema.name" },
        { "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a b\"}}", "response_format.json_schema.name" },
        { "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\",\"schema\":true}}", "response_format.json_schema.schema" },
        { "\"response_format\":{\"type\":\"text\",\"json_schema\":{\"name\":\"a\"}}", "response_format.json_schema" },
        // Streaming options that VixAspire cannot honour.
        { "\"stream_options\":{\"include_usage\":true}", "stream_options" },
        { "\"stream\":true,\"stream_options\":{\"include_obfuscation\":true}", "stream_options.include_obfuscation" },
        // OpenAI's fields that VixAspire does not carry.
        { "\"n\":2", "n" },
        { "\"n\":0", "n" },
        { "\"logprobs\":true", "logprobs" },
        { "\"top_logprobs\":3", "top_logprobs" },
        { "\"logit_bias\":{\"50256\":-100}", "logit_bias" },
        { "\"modalities\":[\"text\",\"audio\"]", "modalities" },
        { "\"audio\":{\"voice\":\"alloy\",\"format\":\"mp3\"}", "audio" },
        { "\"prediction\":{\"type\":\"content\",\"content\":\"x\"}", "prediction" },
        { "\"service_tier\":\"flex\"", "service_tier" },
        { "\"store\":true", "store" },
        { "\"web_search_options\":{}", "web_search_options" },
        { "\"functions\":[{\"name\":\"f\"}]", "functions" },
        { "\"function_call\":\"auto\"", "function_call" },
        { "\"prompt_cache_key\":\"k\"", "prompt_cache_key" },
        { "\"prompt_cache_retention\":\"24h\"", "prompt_cache_retention" },
        { "\"prompt_cache_options\":{}", "prompt_cache_options" },
        { "\"safety_identifier\":\"u\"", "safety_identifier" },
        { "\"verbosity\":\"low\"", "verbosity" },
        { "\"moderation\":{}", "moderation" },
        // Fields OpenAI does not have.
        { "\"prompt\":\"hi\"", "prompt" },
        { "\"top_k\":5", "top_k" },
        { "\"stream_options\":{\"include_usage\":true,\"chunk_size\":2}", "stream_options.chunk_size" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void EachRefusalIsA400NamingItsParameter(string fields, string param)
    {
        var result = Read(WithMessages(fields));

        AssertRefused(result, param);
    }

    public static TheoryData<string, string> MessageRefusals => new()
    {
        { """[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]""", "messages[0].content[0].type" },
        { """[{"role":"user","content":[{"type":"text","text":"a"},{"type":"file","file":{"file_id":"f"}}]}]""", "messages[0].content[1].type" },
        { """[{"role":"user","content":[{"type":"video","video":{}}]}]""", "messages[0].content[0].type" },
        { """[{"role":"user","content":[{"text":"no type"}]}]""", "messages[0].content[0].type" },
        { """[{"role":"user","content":[{"type":"text"}]}]""", "messages[0].content[0].text" },
        { """[{"role":"user","content":[{"type":"text","text":"a","cache":true}]}]""", "messages[0].content[0].cache" },
        { """[{"role":"user","content":[]}]""", "messages[0].content" },
        { """[{"role":"user","content":{"text":"a"}}]""", "messages[0].content" },
        { """[{"role":"user"}]""", "messages[0].content" },
        { """[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]""", "messages[0].content[0].image_url.url" },
        { """[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:text/html;base64,PGI+"}}]}]""", "messages[0].content[0].image_url.url" },
        { """[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,not base64!"}}]}]""", "messages[0].content[0].image_url.url" },
        { """[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://e.com/a.png","detail":"max"}}]}]""", "messages[0].content[0].image_url.detail" },
        { """[{"role":"user","content":[{"type":"image_url","image_url":"https://e.com/a.png"}]}]""", "messages[0].content[0].image_url" },
        { """[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://e.com/a.png"}}]}]""", "messages[0].content[0].type" },
        { """[{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]""", "messages[0].content[0].type" },
        { """[{"role":"assistant"}]""", "messages[0].content" },
        { """[{"role":"assistant","content":"x","refusal":"no"}]""", "messages[0].refusal" },
        { """[{"role":"assistant","content":"x","audio":{"id":"a"}}]""", "messages[0].audio" },
        { """[{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]""", "messages[0].function_call" },
        { """[{"role":"assistant","content":"x","annotations":[{"type":"url_citation"}]}]""", "messages[0].annotations" },
        { """[{"role":"assistant","tool_calls":[]}]""", "messages[0].tool_calls" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{not json"}}]}]""", "messages[0].tool_calls[0].function.arguments" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{} {}"}}]}]""", "messages[0].tool_calls[0].function.arguments" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":""}}]}]""", "messages[0].tool_calls[0].function.arguments" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f"}}]}]""", "messages[0].tool_calls[0].function.arguments" },
        { """[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]""", "messages[0].tool_calls[0].id" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]""", "messages[0].tool_calls[0].function.name" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"f","input":"x"}}]}]""", "messages[0].tool_calls[0].type" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}","parsed":{}}}]}]""", "messages[0].tool_calls[0].function.parsed" },
        { """[{"role":"tool","tool_call_id":"nope","content":"x"}]""", "messages[0].tool_call_id" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"other","content":"x"}]""", "messages[1].tool_call_id" },
        { """[{"role":"tool","content":"x"}]""", "messages[0].tool_call_id" },
        { """[{"role":"tool","tool_call_id":"c","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]""", "messages[0].tool_call_id" },
        { """[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","name":"f","content":"x"}]""", "messages[1].name" },
        { """[{"role":"user","content":"x","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]""", "messages[0].tool_calls" },
        { """[{"role":"user","content":"x","tool_call_id":"c"}]""", "messages[0].tool_call_id" },
        { """[{"role":"user","content":"x","reasoning_content":"r"}]""", "messages[0].reasoning_content" },
        { """[{"role":"robot","content":"x"}]""", "messages[0].role" },
        { """[{"role":"user","content":"x","mood":"happy"}]""", "messages[0].mood" },
    };

    [Theory]
    [MemberData(nameof(MessageRefusals))]
    public void EachMessageMistakeIsA400NamingItsPlace(string messages, string param)
    {
        var result = Read($$"""{"model":"synthetic","messages":{{messages}}}""");

        AssertRefused(result, param);
    }

    [Fact]
    public void AnUnknownFieldIsRefusedAsOpenAiRefusesIt()
    {
        var result = Read(WithMessages("\"top_k\":5"));

        var fault = AssertRefused(result, "top_k");
        Assert.Equal("Unrecognized request argument supplied: top_k", fault.Detail);
        Assert.Equal("unknown_parameter", fault.Code);
    }

    [Fact]
    public void ASchemaAtTheDepthLimitIsAcceptedAndOneDeeperIsRefused()
    {
        static string Nested(int depth) => string.Concat(Enumerable.Repeat("{\"a\":", depth - 1)) + "{}" + new string('}', depth - 1);

        var atLimit = Read(WithMessages(ToolWithParameters(Nested(ChatTools.MaxSchemaDepth))));
        var deeper = Read(WithMessages(ToolWithParameters(Nested(ChatTools.MaxSchemaDepth + 1))));

        Assert.Null(atLimit.Fault);
        Assert.Contains("nested too deeply", AssertRefused(deeper, "tools[0].function.parameters").Detail);
    }

    [Theory]
    [InlineData("tools", "tools[0].function.parameters")]
    [InlineData("response_format", "response_format.json_schema.schema")]
    public void ASchemaNestedTenThousandLevelsIsA400NamingIt(string field, string param)
    {
        var deep = new string('[', 10_000) + new string(']', 10_000);
        var json = field == "tools"
            ? WithMessages(ToolWithParameters("{\"a\":" + deep + "}"))
            : WithMessages(""" "response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"a":""" + deep + "}}}");

        var fault = AssertRefused(Read(json), param);

        Assert.Contains("nested too deeply", fault.Detail);
    }

    [Fact]
    public void TenThousandToolsAreOneBoundedError()
    {
        var tools = string.Join(",", Enumerable.Range(0, 10_000).Select(i => """{"type":"function","function":{"name":"tool_""" + i + "\"}}"));

        var fault = AssertRefused(Read(WithMessages($"\"tools\":[{tools}]")), "tools");

        Assert.Single(fault.Errors!);
        Assert.True(fault.Detail.Length < 200, fault.Detail);
    }

    [Fact]
    public void ManyMistakesAreListedUpToTheBoundAndCounted()
    {
        var tools = string.Join(",", Enumerable.Range(0, 100).Select(_ => """{"type":"function","function":{"name":"bad name"}}"""));

        var fault = AssertRefused(Read(WithMessages($"\"tools\":[{tools}]")), "tools[0].function.name");

        Assert.Equal(RequestFault.MaxErrors, fault.Errors!.Count);
        Assert.Contains("80 more errors are not listed", fault.Detail);
    }

    [Fact]
    public void InferStreamAlwaysStreams()
    {
        Assert.Null(Read(WithMessages("\"stream\":true"), FrontEnd.Inference).Fault);
        Assert.Null(Read(WithMessages("\"stream\":true,\"stream_options\":{\"include_usage\":true}"), FrontEnd.Inference).Fault);
        AssertRefused(Read(WithMessages("\"stream\":false"), FrontEnd.Inference), "stream");
        Assert.Null(Read(WithMessages("\"stream\":false"), FrontEnd.OpenAi).Fault);
    }

    [Fact]
    public void PromptIsTakenOffV1Only()
    {
        var request = Assert.IsType<InferenceRequest>(Read("""{"prompt":"hi","temperature":1}""", FrontEnd.Inference).Request);

        Assert.Equal(new ChatTurn("user", "hi"), Assert.Single(request.Messages));
        AssertRefused(Read("""{"prompt":"hi"}""", FrontEnd.OpenAi), "prompt");
    }

    [Fact]
    public void AWholeAnswersMessageSentBackAsItCameIsAccepted()
    {
        // What an application that appends choices[0].message to its messages sends: OpenAI's response fields, empty.
        var result = Read("""
            {"model":"synthetic","tools":[{"type":"function","function":{"name":"f"}}],"messages":[
              {"role":"user","content":"go"},
              {"role":"assistant","content":null,"refusal":null,"annotations":[],"audio":null,"function_call":null,"reasoning_content":"think",
               "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"done"}]}
            """);

        Assert.Equal("think", Assert.IsType<InferenceRequest>(result.Request).Messages[1].ReasoningContent);
    }

    [Fact]
    public void AnAssistantMessageEchoedBackByTheOpenAiClientIsAccepted()
    {
        // What openai-node's runTools sends back: content null, tool calls with their type, no refusal.
        var result = Read("""
            {"model":"synthetic","tools":[{"type":"function","function":{"name":"f"}}],"messages":[
              {"role":"user","content":"go"},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"arguments":"{}","name":"f"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"{\"ok\":true}"}]}
            """);

        Assert.Null(result.Fault);
    }

    private static RequestFault AssertRefused(InferenceRequestReader.ReadResult result, string param)
    {
        Assert.Null(result.Request);
        var fault = Assert.IsType<RequestFault>(result.Fault);
        Assert.Equal(400, fault.Status);
        Assert.Contains(param, fault.Errors!.Keys);
        Assert.Equal(param, fault.Errors.Keys.First());
        return fault;
    }
}
