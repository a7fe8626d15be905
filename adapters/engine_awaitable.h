// The engine's callbacks as Asio operations, so listener coroutines can
// co_await them; the completion runs on the coroutine's own executor.
#pragma once

#include <memory>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include "engine/engine.h"

namespace courier::adapters {

template <typename Token>
auto async_accept(Engine& engine, Inbound inbound, Token&& token) {
  return boost::asio::async_initiate<Token, void(Reply)>(
      [&engine](auto handler, Inbound inbound) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        engine.accept(std::move(inbound), [shared](Reply reply) {
          auto executor = boost::asio::get_associated_executor(*shared);
          boost::asio::post(executor,
                            [shared, reply = std::move(reply)]() mutable { (*shared)(std::move(reply)); });
        });
      },
      token, std::move(inbound));
}

template <typename Token>
auto async_rest(Engine& engine, rest::RestRequest request, Token&& token) {
  return boost::asio::async_initiate<Token, void(rest::RestResponse)>(
      [&engine](auto handler, rest::RestRequest request) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        engine.rest(std::move(request), [shared](rest::RestResponse response) {
          auto executor = boost::asio::get_associated_executor(*shared);
          boost::asio::post(executor, [shared, response = std::move(response)]() mutable {
            (*shared)(std::move(response));
          });
        });
      },
      token, std::move(request));
}

}  // namespace courier::adapters
