// The engine's callbacks as Asio operations, so listener coroutines can
// co_await them; the completion runs on the coroutine's own executor.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include "engine/engine.h"

namespace courier::adapters {

// Starts `call(arguments, callback)` and resumes the awaiting coroutine, on
// its own executor, with what the callback is given.
template <typename Result, typename Token, typename Call, typename Arguments>
auto async_engine_call(Call call, Arguments arguments, Token&& token) {
  return boost::asio::async_initiate<Token, void(Result)>(
      [call](auto handler, Arguments arguments) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        call(std::move(arguments), [shared](Result result) {
          auto executor = boost::asio::get_associated_executor(*shared);
          boost::asio::post(executor,
                            [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
        });
      },
      token, std::move(arguments));
}

template <typename Token>
auto async_accept(Engine& engine, Inbound inbound, Token&& token) {
  return async_engine_call<Reply>(
      [&engine](Inbound in, std::function<void(Reply)> done) {
        engine.accept(std::move(in), std::move(done));
      },
      std::move(inbound), std::forward<Token>(token));
}

template <typename Token>
auto async_rest(Engine& engine, rest::RestRequest request, Token&& token) {
  return async_engine_call<rest::RestResponse>(
      [&engine](rest::RestRequest r, std::function<void(rest::RestResponse)> done) {
        engine.rest(std::move(r), std::move(done));
      },
      std::move(request), std::forward<Token>(token));
}

}  // namespace courier::adapters
